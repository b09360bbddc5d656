//! End-to-end tests of deleting on purpose and of what deleting frees: `stats` says what `prune`
//! frees (one computation) and `prune --dry-run` speaks in the conditional; explicit `forget`.

mod restore_env;

use restore_env::*;
use serde_json::Value;
use std::fs;

/// Bytes no compressor shrinks (xorshift), so pack sizes follow file sizes.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn store_stats(env: &Env) -> Value {
    let s: Value = serde_json::from_str(&env.ok(&["stats", "--json"])).unwrap();
    s["store"].clone()
}

/// `stats`' "freeable by prune", then what a dry run says, then what prune really frees.
fn freeable_then_prune(env: &Env) -> (u64, u64) {
    let before = store_stats(env);
    let freeable = before["prune_freeable_bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no prune_freeable_bytes: {before}"));
    let text = env.ok(&["stats"]);
    let line = text
        .lines()
        .find(|l| l.contains("freeable by prune"))
        .unwrap()
        .to_string();
    let dry = env.ok(&["prune", "--dry-run"]);
    assert!(
        dry.contains("would delete") && !dry.contains("deleted ") && !dry.contains("rewrote"),
        "{dry}"
    );
    assert!(
        dry.contains(&format!(" {freeable} bytes freed")),
        "dry run and stats disagree: {dry} / {line}"
    );
    let stored = |s: &Value| s["stored_bytes"].as_u64().unwrap();
    env.ok(&["prune"]);
    let after = store_stats(env);
    (freeable, stored(&before) - stored(&after))
}

#[test]
fn stats_says_what_prune_frees() {
    let env = Env::new();
    let src = env.path("src");
    let part = format!("p={}", src.display());
    let backup = || env.ok(&["backup", "--host", HOST, "--part", &part]);
    write(&src.join("big"), &noise(2 << 20, 1));
    write(&src.join("s"), &noise(3000, 2));
    write(&src.join("t"), &noise(3000, 3));
    backup();
    write(&src.join("s"), &noise(3000, 4));
    backup();
    env.ok(&["forget", "--keep-last", "1"]);
    // Only the old `s` and a folder are unused, in a pack still mostly used: prune keeps it.
    let (freeable, freed) = freeable_then_prune(&env);
    assert_eq!((freeable, freed), (0, 0));
    let kept = store_stats(&env)["unused_kept_bytes"].as_u64().unwrap();
    assert!(kept > 0, "{kept}");

    // `big` goes: its pack is rewritten around `t`, and the old `s` goes with it.
    fs::remove_file(src.join("big")).unwrap();
    backup();
    env.ok(&["forget", "--keep-last", "1"]);
    let (freeable, freed) = freeable_then_prune(&env);
    assert!(freeable > 2 << 20, "{freeable}");
    assert_eq!(freeable, freed);

    // Nothing more to free.
    let (freeable, freed) = freeable_then_prune(&env);
    assert_eq!((freeable, freed), (0, 0));
}
