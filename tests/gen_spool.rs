//! The generated spool seen from outside, through the exact tree comparer: same seed, same tree
//! (bytes and metadata); a simulated day is a difference the comparer sees.

mod common;

use bmbackup::gen::{generate_spool, simulate_day, SpoolSpec};
use common::{assert_same_tree, diff_trees, rsync_itemize};

#[test]
fn same_seed_gives_identical_trees_and_days() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let spec = SpoolSpec::demo();
    generate_spool(&a, &spec).unwrap();
    generate_spool(&b, &spec).unwrap();
    assert_same_tree(&a, &b);

    let day = simulate_day(&a, 11, 1).unwrap();
    let diffs = diff_trees(&a, &b);
    // Each touched folder, and only those, has its index rewritten (and the comparer sees it).
    let indexes: std::collections::BTreeSet<&String> = diffs
        .iter()
        .filter(|d| d.contains("cyrus.index\": content") || d.contains("cyrus.index\": size"))
        .collect();
    let folders: std::collections::BTreeSet<&str> = indexes
        .iter()
        .filter_map(|d| d.split("cyrus.index").next())
        .collect();
    assert!(day.touched_folders > 0);
    assert_eq!(folders.len() as u64, day.touched_folders, "{diffs:#?}");
    assert!(
        diffs.iter().any(|d| d.contains("only in a")),
        "no new message seen: {diffs:?}"
    );
    assert!(diffs.iter().any(|d| d.contains("cyrus.index")), "{diffs:?}");
    assert!(!rsync_itemize(&a, &b).is_empty());
    simulate_day(&b, 11, 1).unwrap();
    assert_same_tree(&a, &b);
    assert_eq!(rsync_itemize(&a, &b), Vec::<String>::new());
}

#[test]
fn users_live_where_the_restore_template_expects_them() {
    let dir = tempfile::tempdir().unwrap();
    generate_spool(dir.path(), &SpoolSpec::demo()).unwrap();
    // `{domain}/user/{local}`: every user directory has an INBOX index and two subfolders.
    let mut users = 0;
    for domain in std::fs::read_dir(dir.path()).unwrap() {
        for user in std::fs::read_dir(domain.unwrap().path().join("user")).unwrap() {
            let u = user.unwrap().path();
            assert!(u.join("cyrus.index").is_file(), "{u:?}");
            assert!(
                u.join("Sent/cyrus.index").is_file() && u.join("Archive/cyrus.index").is_file()
            );
            users += 1;
        }
    }
    assert_eq!(users, 10);
}
