//! Property tests at the load boundary: arbitrary stack files, values
//! files, `--set` assignments, selectors, stack-file expressions, SOPS
//! files and age
//! files never make `stack` panic, and what it refuses is refused with a
//! location. Bounded: 256 cases per property unless `PROPTEST_CASES` says
//! otherwise.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;
use stack_core::diagnostic::SourceFile;
use stack_core::load::config::{Stack, parse_stack_file};
use stack_core::load::graph::Selector;
use stack_core::load::values::{SetValue, lookup, merge};
use stack_core::secrets::identities::Identities;

/// Words a stack file is made of, so that generated files reach past the
/// first syntax error into the stack-file rules.
const WORDS: &[&str] = &[
    "releases:",
    "environments:",
    "- name: web",
    "  name: api",
    "  chart: ./charts/web",
    "  namespace: apps",
    "  needs: [db]",
    "  needs:",
    "  labels: {tier: core}",
    "  values:",
    "  installed: false",
    "  installed: \"{{ values.on }}\"",
    "  timeout: 5m",
    "  timeout: forever",
    "  atomic: maybe",
    "  default:",
    "    cluster: simulated",
    "    values: [common.yaml]",
    "    secrets: [secrets/x.yaml]",
    "defaultEnvironment: default",
    "helmDefaults: {}",
    "{{",
    "}}",
    "{{ values.a }}",
    "  - ",
    "  ",
    ": ",
    "[",
    "]",
    "{",
    "}",
    "&a",
    "*a",
    "<<: *a",
    "!!binary",
    "\"",
    "'",
    "#",
    "---",
    "\t",
    "\n",
    "null",
    "~",
    "-1e999",
    "0x1F",
    "ü",
];

fn stack_text() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(proptest::sample::select(WORDS), 0..40).prop_map(|words| {
            words
                .iter()
                .map(|w| {
                    if w.starts_with(' ') {
                        format!("\n{w}")
                    } else {
                        (*w).to_string()
                    }
                })
                .collect()
        }),
        ".{0,200}",
    ]
}

fn located(error: &stack_core::load::config::ConfigError) -> bool {
    error.span().is_some()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// A stack file of anything: no panic, and every problem found in it
    /// points into it.
    #[test]
    fn stack_files_never_panic_and_errors_are_located(text in stack_text()) {
        let source = SourceFile::new("stack.yaml", text);
        let mut stack = Stack::default();
        let mut errors = Vec::new();
        parse_stack_file(&source, &mut stack, &mut errors);
        for error in &errors {
            prop_assert!(located(error), "not located: {error}");
        }
    }

    /// A values file of anything: no panic; a syntax error has a line.
    #[test]
    fn values_files_never_panic_and_errors_are_located(text in stack_text()) {
        let source = SourceFile::new("values.yaml", text);
        if let Err(error) = stack_core::yaml::parse_values(&source) {
            prop_assert!(error.span.location().contains("values.yaml:"), "{}", error.span.location());
        }
    }

    /// `--set` of anything: no panic; an assignment it accepts lands at its
    /// path when merged over other values.
    #[test]
    fn set_assignments_land_at_their_path(text in ".{0,40}", base in values()) {
        if let Ok(set) = SetValue::parse(&text, false) {
            let mut merged = base;
            merge(&mut merged, set.to_overlay());
            let path: Vec<&str> = set.path.iter().map(String::as_str).collect();
            if set.value.is_null() {
                prop_assert!(lookup(&merged, &path).is_none_or(Value::is_null));
            } else {
                prop_assert_eq!(lookup(&merged, &path), Some(&set.value));
            }
        }
    }

    /// Merging values: every leaf of the overlay wins, `null` removes.
    #[test]
    fn merged_values_take_every_leaf_of_the_overlay(base in values(), overlay in values()) {
        let mut merged = base;
        merge(&mut merged, overlay.clone());
        let mut leaves = Vec::new();
        leaves_of(&overlay, &mut Vec::new(), &mut leaves);
        for (path, value) in leaves {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            if value.is_null() {
                // Nothing of a lower layer survives a `null` (a `null` with
                // nothing below it to remove may stay, as a `null`).
                prop_assert!(lookup(&merged, &path).is_none_or(Value::is_null), "{path:?} kept");
            } else {
                prop_assert_eq!(lookup(&merged, &path), Some(&value));
            }
        }
    }

    /// A selector of anything: no panic; one it accepts matches labels by
    /// each of its terms.
    #[test]
    fn selectors_never_panic_and_match_by_their_terms(
        text in "[a-z=!,.\\- ]{0,30}",
        labels in proptest::collection::btree_map("[a-z]{1,3}", "[a-z]{1,3}", 0..4),
    ) {
        if let Ok(selector) = Selector::parse(&text) {
            let all: BTreeMap<String, String> = labels;
            let _ = selector.matches(&all);
        }
    }

    /// A SOPS file of anything (and a real one with bytes changed): no
    /// panic; an error, never plaintext, without the key.
    #[test]
    fn sops_files_of_anything_never_panic(text in stack_text(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4)) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let identities = Identities { keys: Vec::new(), sources: Vec::new() };
        let path = dir.path().join("anything.yaml");
        std::fs::write(&path, &text).expect("write");
        let _ = stack_core::secrets::decrypt_file(&path, &identities);
        let mut real = std::fs::read(example_secret()).expect("the example's secret");
        for (at, byte) in flips {
            let index = at % real.len();
            real[index] = byte;
        }
        let tampered = dir.path().join("db.yaml");
        std::fs::write(&tampered, &real).expect("write");
        prop_assert!(stack_core::secrets::decrypt_file(&tampered, &identities).is_err());
    }

    /// An age file of anything: no panic, an error.
    #[test]
    fn age_files_of_anything_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let identities = Identities { keys: Vec::new(), sources: Vec::new() };
        let mut contents = b"age-encryption.org/v1\n".to_vec();
        contents.extend(bytes);
        prop_assert!(stack_core::secrets::age_file::decrypt("x.age", &contents, &identities).is_err());
    }
}

/// Pieces of stack-file expressions and templates.
const EXPRESSION: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "values",
    ".",
    "a",
    "b",
    "[0]",
    "['a']",
    "|",
    "upper",
    "default(1)",
    "b64encode",
    "tojson",
    "sha256",
    "replace('a', 'b')",
    "indent(2)",
    "+",
    "-",
    "*",
    "/",
    "//",
    "%",
    "~",
    "(",
    ")",
    "1",
    "0",
    "'x'",
    "\"",
    "none",
    "true",
    " if ",
    " else ",
    "not ",
    " and ",
    "environment.name",
    "release.name",
    "if",
    "endif",
    "set x = 1",
    "x",
    " ",
    "\n",
    "{#",
    "#}",
];

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// A stack-file string with expressions of anything: no panic; an
    /// error is a located expression error.
    #[test]
    fn expressions_never_panic(
        pieces in proptest::collection::vec(proptest::sample::select(EXPRESSION), 0..16),
        values in values(),
    ) {
        let text: String = pieces.concat();
        let env = stack_core::load::render::filters::environment(&stack_core::mask::Masks::default());
        let context = minijinja::context! {
            values => minijinja::Value::from(minijinja::value::Serde(&values)),
            environment => minijinja::context! { name => "default" },
            release => minijinja::context! { name => "web", namespace => "apps" },
        };
        let evaluator = stack_core::load::render::expression::Evaluator::new(&env, context);
        let source = SourceFile::new("stack.yaml", text.clone());
        let span = stack_core::diagnostic::Span::new(&source, 0..text.len());
        if let Err(error) = evaluator.string(&text, &span) {
            prop_assert!(error.span().is_some(), "not located: {error}");
        }
    }
}

fn example_secret() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("secrets/development/db.yaml")
}

/// Values as values files hold them: maps of maps, lists and scalars.
fn values() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        "[a-z0-9 ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Every path to a non-map value (`null` included) of a map, with the value.
fn leaves_of(value: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match value {
        Value::Object(map) if !path.is_empty() && map.is_empty() => {}
        Value::Object(map) => {
            for (key, inner) in map {
                path.push(key.clone());
                leaves_of(inner, path, out);
                path.pop();
            }
        }
        other if !path.is_empty() => out.push((path.clone(), other.clone())),
        _ => {}
    }
}
