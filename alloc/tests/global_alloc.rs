//! A whole test program whose global allocator is MEMKIND_REGULAR: std's own allocations
//! (String, Vec, thread spawning, the test harness) all go through the kind.

use memkind::Memkind;

#[global_allocator]
static GLOBAL: Memkind = Memkind::REGULAR;

#[test]
fn std_collections_live_in_regular() {
    let s = String::from("lives in MEMKIND_REGULAR");
    assert_eq!(Memkind::detect(s.as_ptr()), Some(Memkind::REGULAR));
    let v: Vec<u64> = (0..100_000).collect();
    assert_eq!(Memkind::detect(v.as_ptr().cast()), Some(Memkind::REGULAR));
    let mut grow = Vec::new();
    for i in 0..1_000_000u32 {
        grow.push(i);
    }
    assert_eq!(grow[999_999], 999_999);
    assert_eq!(
        Memkind::detect(grow.as_ptr().cast()),
        Some(Memkind::REGULAR)
    );
}

#[test]
fn threads_allocate_and_exit() {
    let handles: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let v: Vec<String> = (0..1000).map(|i| format!("{t}-{i}")).collect();
                assert!(v
                    .iter()
                    .all(|s| Memkind::detect(s.as_ptr()) == Some(Memkind::REGULAR)));
                v.len()
            })
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 8000);
}
