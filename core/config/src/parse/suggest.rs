//! Typo suggestions: the known name closest to an unknown one, and the problem that names it.

use kdl::KdlNode;

use super::schema::KEEPALIVED_NAMES;
use super::validate::Validator;

/// Optimal-string-alignment edit distance: a swap of two neighbours counts as one edit.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The known name closest to a misspelt one, if any is close enough to be a likely typo.
pub(super) fn closest<'k>(word: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let word = word.to_lowercase().replace('_', "-");
    let limit = match word.chars().count() {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    known
        .into_iter()
        .map(|k| {
            let d = edit_distance(&word, k);
            // A cut-short name (`advert` for `advert-interval`) is as good as a typo.
            let d = if word.len() >= 3 && k.starts_with(&word) {
                d.min(1)
            } else {
                d
            };
            (d, k)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

impl Validator<'_> {
    pub(super) fn unknown(&mut self, node: &KdlNode, known: &[&str], place: &str) {
        let name = node.name().value();
        let alias = KEEPALIVED_NAMES
            .iter()
            .find(|(k, ours)| *k == name && known.contains(ours));
        let help = match (alias, closest(name, known.iter().copied())) {
            (Some((k, ours)), _) => format!("keepalived's `{k}` is `{ours}` here"),
            (None, Some(s)) => format!("did you mean `{s}`?"),
            (None, None) => format!("known here: {}", known.join(", ")),
        };
        let kind = if place == "the file" {
            "section"
        } else {
            "setting"
        };
        self.report(
            node.name().span(),
            format!("unknown {kind} `{name}` in {place}"),
            "unknown name",
            help,
        );
    }
}
