//! Shell-style name patterns (`*` any run of bytes, `?` one byte, everything else literal) over
//! raw name bytes, for `find` and restore exclusions. A pattern containing `/` is matched against
//! a whole relative path from the part's root, and then `*` and `?` do not cross `/`, as in a
//! shell, while a `**` component matches any number of folders (zero included), as in git and
//! zsh: `**/user/jdoe/Sent/*` finds the folder at any depth. Without `/` a pattern is matched
//! against a file name only, wherever it is.

/// A compiled pattern. Matching is a linear-time greedy scan with one backtrack point (the last
/// `*`), so a hostile pattern cannot blow up the way a naive recursive matcher can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<u8>,
    path: bool,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        let trimmed = pattern.trim_start_matches('/');
        Glob {
            path: trimmed.contains('/'),
            pattern: trimmed.as_bytes().to_vec(),
        }
    }

    /// The pattern as given, without leading `/`.
    pub fn pattern(&self) -> &[u8] {
        &self.pattern
    }

    /// True when the pattern applies to whole relative paths, not just names.
    pub fn is_path(&self) -> bool {
        self.path
    }

    /// Matches `name` (a file name) or, for path patterns, `path` (relative, `/`-separated).
    pub fn matches_entry(&self, name: &[u8], path: &[u8]) -> bool {
        if self.path {
            matches_path(&self.pattern, path)
        } else {
            matches(&self.pattern, name, false)
        }
    }
}

/// Whether the `/`-separated `path` matches `pat` component by component, a `**` component
/// standing for any number of components. Dynamic programming over (pattern component, path
/// component): linear in their product, whatever the pattern.
fn matches_path(pat: &[u8], path: &[u8]) -> bool {
    let segs: Vec<&[u8]> = pat
        .split(|&b| b == b'/')
        .filter(|s| !s.is_empty())
        .collect();
    let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    // ok[j]: the pattern components seen so far match exactly the first j path components.
    let mut ok = vec![false; comps.len() + 1];
    ok[0] = true;
    for seg in &segs {
        let mut next = vec![false; comps.len() + 1];
        if *seg == b"**" {
            let mut reached = false;
            for j in 0..=comps.len() {
                reached |= ok[j];
                next[j] = reached;
            }
        } else {
            for j in 0..comps.len() {
                next[j + 1] = ok[j] && matches(seg, comps[j], true);
            }
        }
        ok = next;
    }
    ok[comps.len()]
}

/// Whether `text` matches `pat`; with `slash_is_special`, wildcards never match `/`.
fn matches(pat: &[u8], text: &[u8], slash_is_special: bool) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index it now covers to).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let c = text[t];
        if p < pat.len() && pat[p] == b'*' {
            star = Some((p + 1, t));
            p += 1;
            continue;
        }
        if p < pat.len() && (pat[p] == c || (pat[p] == b'?' && !(slash_is_special && c == b'/'))) {
            p += 1;
            t += 1;
            continue;
        }
        match star {
            // Let the last `*` swallow one more byte, unless that byte is a `/` it may not cross.
            Some((sp, st)) if !(slash_is_special && text[st] == b'/') => {
                star = Some((sp, st + 1));
                p = sp;
                t = st + 1;
            }
            _ => return false,
        }
    }
    pat[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(p: &str, n: &str) -> bool {
        Glob::new(p).matches_entry(n.as_bytes(), n.as_bytes())
    }

    #[test]
    fn names() {
        let table = [
            ("*", "anything", true),
            ("*", "", true),
            ("1.", "1.", true),
            ("1.", "11.", false),
            ("*.", "123.", true),
            ("?.", "1.", true),
            ("?.", "12.", false),
            ("cyrus.*", "cyrus.index", true),
            ("cyrus.*", "xcyrus.index", false),
            ("*a*b*c", "xxaxxbxxc", true),
            ("*a*b*c", "xxaxxcxxb", false),
            ("a**b", "ab", true),
            ("", "", true),
            ("", "a", false),
            ("*.eml", "a.eml.bak", false),
        ];
        for (p, n, want) in table {
            assert_eq!(name(p, n), want, "{p:?} vs {n:?}");
        }
    }

    #[test]
    fn paths_do_not_let_wildcards_cross_slashes() {
        let g = Glob::new("*/user/*/Sent/*");
        assert!(g.is_path());
        assert!(g.matches_entry(b"1.", b"example.com/user/jdoe/Sent/1."));
        assert!(!g.matches_entry(b"1.", b"example.com/user/jdoe/Archive/Sent/1."));
        assert!(!g.matches_entry(b"1.", b"a/b/user/jdoe/Sent/1."));
        let g = Glob::new("/dom/user/a?c/x");
        assert!(g.matches_entry(b"x", b"dom/user/abc/x"));
        assert!(!g.matches_entry(b"x", b"dom/user/a/c/x"));
        assert!(!Glob::new("*.").is_path());
    }

    #[test]
    fn double_stars_cross_folders() {
        let cyrus = b"domain/e/example.org/a/user/alice/Sent/1.";
        let g = Glob::new("**/user/alice/Sent/*");
        assert!(g.matches_entry(b"1.", cyrus));
        assert!(
            g.matches_entry(b"1.", b"user/alice/Sent/1."),
            "zero folders"
        );
        assert!(!g.matches_entry(b"1.", b"domain/user/alice/Sent/sub/1."));
        assert!(!Glob::new("*/user/alice/Sent/*").matches_entry(b"1.", cyrus));
        let g = Glob::new("domain/**/*.");
        assert!(g.matches_entry(b"1.", cyrus));
        assert!(!g.matches_entry(b"1.", b"other/e/1."));
        let g = Glob::new("**/Sent/**");
        assert!(g.matches_entry(b"1.", cyrus));
        assert!(!g.matches_entry(b"x", b"a/Sentx/x"));
        // Many `**` against a deep path stays quick (no backtracking blow-up).
        let deep = vec!["d"; 200].join("/");
        let pat = vec!["**"; 50].join("/") + "/x";
        assert!(!Glob::new(&pat).matches_entry(b"d", deep.as_bytes()));
    }

    #[test]
    fn raw_bytes_and_long_inputs() {
        let g = Glob::new("*\u{e9}*");
        assert!(g.matches_entry("caf\u{e9}".as_bytes(), b""));
        let long = vec![b'a'; 10_000];
        assert!(!Glob::new("*a*a*a*a*a*b").matches_entry(&long, &long));
    }
}
