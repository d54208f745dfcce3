#!/usr/bin/env bash
# Check that the modules of alloc/src import only downward, in the layer order written in
# alloc/src/lib.rs's doc comment (lines `//! N. `a`, `b`: ...`, layer 1 on top). A module may use
# modules of lower layers (higher numbers) only, never its own layer or one above: so there is no
# import cycle between top-level modules either. A module's own children are its business.
#
# An import is any path `crate::x` (also `$crate::x`, `crate::{x, y}`) or, in a top-level file,
# `super::x`, outside comments. Test code is not counted (files named tests.rs, and everything
# from a `#[cfg(test)]` line on): like Cargo's dev-dependencies, a layer's tests may drive it
# through the layers above it.
#   tests/check-layers.sh            check, print every violation, exit 1 if any
#   tests/check-layers.sh --graph    also print the module graph
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/../alloc/src"
exec perl -e '
use strict; use warnings;
my ($src, $graph) = @ARGV;
open my $lib, "<", "$src/lib.rs" or die "lib.rs: $!";
my (%layer, @order);
while (<$lib>) {
    next unless m{^//!\s+(\d+)\.\s+(.*)$};
    my ($n, $rest) = ($1, $2);
    $rest =~ s/:.*$//;                      # names come before the colon
    for my $m ($rest =~ /`([a-z_]+)`/g) { $layer{$m} = $n; push @order, $m; }
}
die "no layer list in lib.rs\n" unless @order;
# Every top-level module must have a layer.
my @mods;
opendir my $d, $src or die;
for (sort readdir $d) {
    next if $_ eq "lib.rs" || /^\./;
    if (/^([a-z_]+)\.rs$/) { push @mods, $1 } elsif (-d "$src/$_") { push @mods, $_ }
}
my $bad = 0;
for my $m (@mods) {
    next if exists $layer{$m};
    print "module `$m` has no layer in lib.rs\n"; $bad++;
}
for my $m (keys %layer) {
    next if grep { $_ eq $m } @mods;
    print "lib.rs names layer module `$m`, which does not exist\n"; $bad++;
}
my %edges;
my @files = split /\n/, `find "$src" -name "*.rs" ! -name tests.rs ! -path "$src/lib.rs"`;
for my $f (sort @files) {
    (my $rel = $f) =~ s{^\Q$src\E/}{};
    my ($m) = $rel =~ m{^([a-z_]+)};
    my $top = $rel !~ m{/};                 # a top-level file: super:: is the crate root
    open my $fh, "<", $f or die "$f: $!";
    my $line = 0;
    while (my $l = <$fh>) {
        $line++;
        last if $l =~ /^\s*#\[cfg\(test\)\]/;
        $l =~ s{//.*$}{};
        my @t;
        while ($l =~ /(?<![A-Za-z0-9_])\$?crate::\{([^}]*)/g) { push @t, ($1 =~ /(?:^|,)\s*([a-z_]+)/g) }
        push @t, ($l =~ /(?<![A-Za-z0-9_])\$?crate::([a-z_]+)/g);
        push @t, ($l =~ /(?<![A-Za-z0-9_:])super::([a-z_]+)/g) if $top;
        for my $t (@t) {
            next if $t eq $m || !exists $layer{$t};
            $edges{"$m $t"} //= "$rel:$line";
            next unless exists $layer{$m};
            if ($layer{$t} <= $layer{$m}) {
                my $how = $layer{$t} == $layer{$m} ? "same layer" : "upward";
                print "$rel:$line: `$m` (layer $layer{$m}) uses `$t` (layer $layer{$t}): $how\n";
                $bad++;
            }
        }
    }
}
if ($graph) {
    for my $m (sort { $layer{$a} <=> $layer{$b} || $a cmp $b } @order) {
        my @to = sort { $layer{$a} <=> $layer{$b} || $a cmp $b } map { (split)[1] } grep { /^\Q$m\E / } keys %edges;
        printf "%2d %-11s -> %s\n", $layer{$m}, $m, join(", ", @to);
    }
}
if ($bad) { print "check-layers: $bad violation(s)\n"; exit 1 }
print "check-layers: ", scalar(@files), " files, ", scalar(keys %edges), " imports between ", scalar(@mods), " modules, all downward\n";
' "$src" "${1:-}"
