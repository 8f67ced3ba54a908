//! The CPU cost of one login: an argon2id verification (OWASP parameters: 19 MiB, t=2, p=1), for
//! a known user and for an unknown one (verified against the dummy hash: it must cost the same).
//! `cargo bench -p auth --bench login`

use criterion::{Criterion, criterion_group, criterion_main};
use shared::{Secret, auth::password};

fn login(c: &mut Criterion) {
    let stored = password::hash(&Secret::new("correct horse battery")).expect("hash");
    let attempt = Secret::new("correct horse battery");
    let dummy = password::dummy_hash();
    let mut group = c.benchmark_group("login_argon2id");
    group.sample_size(30);
    group.bench_function("verify_known_user", |b| b.iter(|| password::verify(&attempt, &stored)));
    group.bench_function("verify_unknown_user_dummy_hash", |b| b.iter(|| password::verify(&attempt, dummy)));
    group.bench_function("hash_on_register", |b| b.iter(|| password::hash(&attempt)));
    group.finish();
}

criterion_group!(benches, login);
criterion_main!(benches);
