//! Deployment groups (previews): `stack apply --group mr/26` deploys the
//! selected releases as a copy of their own, in namespaces of their own.
//! A group's name is escaped to a DNS label the way Rise escapes it —
//! lowercase, every character outside `[a-z0-9-]` becomes `--` (`mr/26` →
//! `mr--26`) — and a name too long for one is cut and suffixed with a
//! short digest of the whole name, so two long names never share a label.

use sha2::Digest as _;

use crate::error::Error;
use crate::load::render::RenderedRelease;

/// The label of every object of a group: its escaped name.
pub const GROUP_LABEL: &str = "stack.dev/group";
/// The annotation of every object of a group: its name as given.
pub const GROUP_NAME_ANNOTATION: &str = "stack.dev/group-name";

/// The longest escaped name: a preview namespace `{namespace}-{group}`
/// keeps 32 characters for the namespace.
const MAX_LABEL: usize = 30;
/// How many characters of a cut name stay before its digest.
const KEPT: usize = 21;

/// A deployment group: the name as given and its escaped label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// As given: `mr/26`, `feature/Login_Page@v2`.
    pub name: String,
    /// A DNS label: `mr--26`, `feature--login--page--v2`.
    pub label: String,
}

impl Group {
    /// The group `--group NAME` names, or why it cannot be one.
    pub fn parse(name: &str) -> Result<Self, Error> {
        let label = escape(name);
        if label.is_empty() {
            return Err(Error::Failed {
                message: format!(
                    "`--group {name:?}` has no letter or digit to name the group by"
                ),
                hint: Some(
                    "name the group after its merge request or branch: `--group mr/26`, `--group feature/login`"
                        .into(),
                ),
            });
        }
        Ok(Self {
            name: name.to_string(),
            label,
        })
    }

    /// Who deployed a group's releases, as revisions record it (the
    /// stack's name for the environment's own): the stack's name and the
    /// group's label, a label value of at most 63 characters.
    pub fn owner(&self, stack: &str) -> String {
        let room = 63 - self.label.len() - 1;
        let stack = stack.get(..room.min(stack.len())).unwrap_or(stack);
        format!("{}.{}", stack.trim_end_matches(['-', '.']), self.label)
    }
}

/// Label and annotate every object a group's copy of a release renders
/// (its tests, hooks and canary variants too).
pub(crate) fn mark(rendered: &mut RenderedRelease, group: &Group) {
    let hooks = rendered.hooks.iter_mut().map(|hook| &mut hook.object);
    let variants = rendered
        .variants
        .iter_mut()
        .flat_map(|v| v.objects.iter_mut());
    for object in rendered
        .objects
        .iter_mut()
        .chain(rendered.tests.iter_mut())
        .chain(hooks)
        .chain(variants)
    {
        object.set_metadata("labels", [(GROUP_LABEL, group.label.as_str())]);
        object.set_metadata(
            "annotations",
            [(GROUP_NAME_ANNOTATION, group.name.as_str())],
        );
    }
}

/// `mr/26` → `mr--26`: lowercase, each character outside `[a-z0-9-]` as
/// `--`, no `-` at either end; over [`MAX_LABEL`] characters, cut and
/// suffixed with 8 hex digits of the name's SHA-256.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
            out.push(c);
        } else {
            out.push_str("--");
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.len() <= MAX_LABEL {
        return trimmed.to_string();
    }
    let digest = sha2::Sha256::digest(name.as_bytes());
    let head = trimmed[..KEPT].trim_end_matches('-');
    format!("{head}-{}", stack_kube::hex::lower(&digest[..4]))
}

#[cfg(test)]
mod tests {
    use super::Group;

    fn label(name: &str) -> String {
        Group::parse(name).unwrap().label
    }

    #[test]
    fn names_escape_to_dns_labels() {
        let table = [
            ("mr/26", "mr--26"),
            ("feature/Login_Page@v2", "feature--login--page--v2"),
            ("main", "main"),
            ("MR-7", "mr-7"),
            ("/release/", "release"),
            ("ä", ""),
        ];
        for (name, expected) in table {
            assert_eq!(super::escape(name), expected, "{name}");
        }
    }

    #[test]
    fn a_long_name_is_cut_with_a_digest_and_never_collides() {
        let long = format!("feature/{}", "very-long-branch-name-".repeat(5));
        assert_eq!(long.len(), 118);
        let escaped = label(&long);
        assert!(escaped.len() <= 30, "{escaped}");
        assert!(escaped.starts_with("feature--very-long-br"), "{escaped}");
        let other = label(&format!("{long}x"));
        assert_ne!(
            escaped, other,
            "two long names sharing a start escape alike"
        );
        assert_eq!(label(&long), escaped, "escaping is not stable");
        for name in [&long, &format!("{long}x")] {
            let label = label(name);
            assert!(
                label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-'),
                "{label}"
            );
        }
    }

    #[test]
    fn an_empty_or_all_invalid_name_is_refused() {
        for name in ["", "///", "@", "---"] {
            let error = Group::parse(name).unwrap_err().to_string();
            assert!(error.contains("no letter or digit"), "{name}: {error}");
        }
    }

    #[test]
    fn the_owner_is_a_label_value_naming_stack_and_group() {
        let group = Group::parse("mr/26").unwrap();
        assert_eq!(group.owner("shop"), "shop.mr--26");
        let long = group.owner(&"s".repeat(63));
        assert!(long.len() <= 63, "{long}");
        assert!(long.ends_with(".mr--26"), "{long}");
    }
}
