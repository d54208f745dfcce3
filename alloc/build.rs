//! Give the cdylib memkind's SONAME so programs linked against Debian's libmemkind.so.0 load it.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmemkind.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
