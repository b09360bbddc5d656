//! `bmbackup ls` and `bmbackup diff`: listings and differences read from trees, without a mount.

mod common;
use common::*;
use serde_json::Value;
use std::fs;

fn json(env: &Env, args: &[&str]) -> Value {
    serde_json::from_str(&env.ok(args)).unwrap()
}

#[test]
fn ls_lists_a_folder_a_subtree_and_a_file() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("a/f"), b"hello");
    write(&src.join("a/deep/g"), b"x");
    write(&src.join("top"), b"t");
    std::os::unix::fs::symlink("f", src.join("a/link")).unwrap();
    env.backup(HOST, "p", &src);
    let last = format!("{HOST}/p/last");
    assert_eq!(env.ok(&["ls", &last]), "a/\ntop\n");
    assert_eq!(
        env.ok(&["ls", "-R", &last]),
        "a/\na/deep/\na/deep/g\na/f\na/link\ntop\n"
    );
    let long = env.ok(&["ls", "-l", &format!("{last}:a")]);
    let line = long.lines().find(|l| l.ends_with(" f")).unwrap();
    assert!(line.starts_with("-rw-r--r-- "), "{long}");
    assert!(line.contains(" 5 "), "{long}");
    assert!(long.contains("link -> f"), "{long}");
    let v = json(&env, &["ls", "--json", &format!("{last}:a/f")]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["path"], "f");
    assert_eq!(v[0]["type"], "file");
    assert_eq!(v[0]["size"], 5);
    let err = env.code(&["ls", &format!("{last}:nope")], 1);
    assert!(err.contains("nope is not in snapshot"), "{err}");
}

#[test]
fn diff_reports_added_removed_changed_and_metadata_with_sizes() {
    let env = Env::new();
    let src = env.path("src");
    write(&src.join("keep/same"), b"same");
    write(&src.join("edit"), b"old");
    write(&src.join("gone/x"), b"12345");
    write(&src.join("perm"), b"p");
    let old = env.backup(HOST, "p", &src)["id"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(src.join("edit"), b"newer!").unwrap();
    fs::remove_dir_all(src.join("gone")).unwrap();
    write(&src.join("new/y"), b"1234567");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(src.join("perm"), fs::Permissions::from_mode(0o600)).unwrap();
    let new = env.backup(HOST, "p", &src)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let text = env.ok(&["diff", &old, &new]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..lines.len() - 1],
        [
            "M  edit  (3 B → 6 B)",
            "-  gone/",
            "-  gone/x  (5 B)",
            "+  new/",
            "+  new/y  (7 B)",
            "U  perm",
        ],
        "{text}"
    );
    assert!(
        lines.last().unwrap().starts_with(
            "2 added (7 B), 2 removed (5 B), 1 entry changed (3 B → 6 B), 1 with new metadata only"
        ),
        "{text}"
    );
    let v = json(&env, &["diff", "--json", &old, &new, "new"]);
    let d = v["differences"].as_array().unwrap();
    assert_eq!(d.len(), 2, "{v}");
    assert_eq!(d[1]["path"], "new/y");
    assert_eq!(d[1]["change"], "added");
    assert_eq!(d[1]["new_size"], 7);
    assert_eq!(v["added"]["new_bytes"], 7);
}

#[test]
fn diff_skips_unchanged_folders_without_reading_them() {
    let env = Env::new();
    let src = env.path("src");
    for i in 0..30 {
        write(&src.join(format!("big/d{i}/f")), b"unchanged");
    }
    write(&src.join("small/x"), b"1");
    let a = env.backup(HOST, "p", &src)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = env.backup(HOST, "p", &src)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let same = json(&env, &["diff", "--json", &a, &b]);
    assert_eq!(same["differences"].as_array().unwrap().len(), 0);
    assert_eq!(same["trees_read"], 0, "same root: nothing read");
    assert_eq!(env.ok(&["diff", &a, &b]), "no differences\n");
    fs::write(src.join("small/x"), b"22").unwrap();
    let c = env.backup(HOST, "p", &src)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = json(&env, &["diff", "--json", &b, &c]);
    assert_eq!(v["differences"][0]["path"], "small/x", "{v}");
    // Both roots and both `small` folders; none of the 31 folders under `big`.
    assert_eq!(v["trees_read"], 4, "{v}");
}
