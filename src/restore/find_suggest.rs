//! What `find` offers when nothing matches: the existing paths closest to the pattern, so a
//! misspelt or mis-cased name is answered with "did you mean …" rather than an empty list.
//! Distances are edit distances in which the pattern's `*` and `?` cost nothing, ignoring case;
//! only close paths are offered (a likely typo, not any path at all).

use super::find::FindError;
use super::glob::Glob;
use crate::id::TreeId;
use crate::repo::Repository;
use crate::tree::MAX_DEPTH;
use std::collections::HashSet;

/// How many entries are looked at, at most: enough for a typo in a part's upper folders or in a
/// name found early, bounded so a huge spool still answers at once.
const BUDGET: usize = 50_000;

/// Up to `n` paths under `roots` closest to `glob`, best first (paths relative to the root).
pub fn closest_paths(
    repo: &Repository,
    roots: &[TreeId],
    glob: &Glob,
    n: usize,
) -> Result<Vec<String>, FindError> {
    let pat = glob.pattern().to_ascii_lowercase();
    let literal = pat.iter().filter(|&&b| b != b'*' && b != b'?').count();
    let limit = (literal / 3).max(2);
    let mut best: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut seen = HashSet::new();
    let mut budget = BUDGET;
    // (folder, its path, depth), depth first.
    let mut stack: Vec<(TreeId, Vec<u8>, usize)> =
        roots.iter().map(|r| (*r, Vec::new(), 0)).collect();
    while let Some((id, prefix, depth)) = stack.pop() {
        if budget == 0 || depth > MAX_DEPTH || !seen.insert(id) {
            continue;
        }
        let folder = repo.read_folder(id)?;
        folder.for_each_entry(repo, |e| {
            if budget == 0 {
                return Ok::<_, FindError>(());
            }
            budget -= 1;
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&e.name);
            let text = if glob.is_path() { &path } else { &e.name };
            let d = wild_distance(&pat, &text.to_ascii_lowercase());
            if d <= limit && !best.iter().any(|(_, p)| *p == path) {
                best.push((d, path.clone()));
                best.sort();
                best.truncate(n);
            }
            if let Some(sub) = e.subtree() {
                stack.push((sub, path, depth + 1));
            }
            Ok(())
        })?;
    }
    Ok(best
        .into_iter()
        .map(|(_, p)| String::from_utf8_lossy(&p).into_owned())
        .collect())
}

/// Edit distance from the pattern to `text` where `*` matches any run and `?` any byte for
/// free (Levenshtein otherwise), two rows of memory.
fn wild_distance(pat: &[u8], text: &[u8]) -> usize {
    // prev[j]: distance of the pattern so far to text[..j].
    let mut prev: Vec<usize> = (0..=text.len()).collect();
    let mut cur = vec![0; text.len() + 1];
    for &p in pat {
        if p == b'*' {
            cur[0] = prev[0];
            for j in 1..=text.len() {
                cur[j] = prev[j].min(cur[j - 1]);
            }
        } else {
            cur[0] = prev[0] + 1;
            for j in 1..=text.len() {
                let same = p == b'?' || p == text[j - 1];
                cur[j] = (prev[j - 1] + usize::from(!same))
                    .min(prev[j] + 1)
                    .min(cur[j - 1] + 1);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[text.len()]
}

#[cfg(test)]
mod tests {
    use super::wild_distance;

    #[test]
    fn wildcards_are_free_and_typos_cost() {
        assert_eq!(wild_distance(b"*.eml", b"x.eml"), 0);
        assert_eq!(wild_distance(b"cyrus.headr", b"cyrus.header"), 1);
        assert_eq!(
            wild_distance(b"**/user/karim/sent/*", b"a/user/karim/sent/1."),
            0
        );
        assert_eq!(wild_distance(b"user/karin/*", b"user/karim/1."), 1);
        assert_eq!(wild_distance(b"abc", b""), 3);
        assert_eq!(wild_distance(b"", b"ab"), 2);
    }
}
