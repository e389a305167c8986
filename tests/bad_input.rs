//! Fault suite 7: a corpus of bad input. Each case exits 1 with a message
//! that says where the problem is, and the cluster sees not one mutating
//! request across the whole corpus (product.md §8: everything checkable is
//! checked before the first write).

use crate::atomic::Seen;
use crate::harness::{Server, Test};

/// How a case spoils the example platform.
enum Edit {
    /// Replace the first occurrence of a text in a file.
    Replace(&'static str, &'static str, &'static str),
    /// Write a whole file.
    Write(&'static str, &'static str),
    /// Remove a file.
    Remove(&'static str),
}

use Edit::{Remove, Replace, Write};

const STACK: &str = "stacks/platform.yaml";
const BACKEND: &str = "stacks/charts/backend/templates/configmap.yaml";
const SECRET: &str = "secrets/development/db.yaml";
const SERVICE: &str = "stacks/charts/frontend/templates/service.yaml";

struct Case {
    name: &'static str,
    edits: &'static [Edit],
    args: &'static [&'static str],
    /// What the message must contain: the place, and what is wrong.
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "a template whose loops never finish",
        edits: &[Write(
            "stacks/charts/backend/templates/endless.yaml",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
        )],
        args: &[],
        expect: &["endless.yaml", "did not finish within"],
    },
    Case {
        name: "malformed YAML in the stack file",
        edits: &[Replace(STACK, "releases:", "releases: [\n  - {")],
        args: &[],
        expect: &["platform.yaml:"],
    },
    Case {
        name: "unknown release key",
        edits: &[Replace(
            STACK,
            "    chart: charts/postgres",
            "    chrat: charts/postgres",
        )],
        args: &[],
        expect: &["platform.yaml:", "chrat", "chart"],
    },
    Case {
        name: "a key set twice in a values file",
        edits: &[Replace(
            "environments/development.yaml",
            "  frontend: 1\n",
            "  frontend: 1\n  backend: 3\n",
        )],
        args: &[],
        expect: &[
            "development.yaml:8:",
            "duplicate key `backend`: set at line 6, and again at line 8",
        ],
    },
    Case {
        name: "unknown top-level key",
        edits: &[Replace(STACK, "defaults:", "defualts:")],
        args: &[],
        expect: &["platform.yaml:", "defualts"],
    },
    Case {
        name: "a cycle",
        edits: &[Replace(
            STACK,
            "    labels: {tier: core, app: platform}\n    shared: true\n\n",
            "    labels: {tier: core, app: platform}\n    shared: true\n    needs: [apps/frontend]\n\n",
        )],
        args: &[],
        expect: &["->", "core/namespaces"],
    },
    Case {
        name: "an unknown need",
        edits: &[Replace(
            STACK,
            "needs: [data/postgres]",
            "needs: [data/postgre]",
        )],
        args: &[],
        expect: &["platform.yaml:", "data/postgre"],
    },
    Case {
        name: "a duplicate release",
        edits: &[Replace(
            STACK,
            "  - name: network-policies\n    namespace: core",
            "  - name: namespaces\n    namespace: core",
        )],
        args: &[],
        expect: &["platform.yaml:", "core/namespaces"],
    },
    Case {
        name: "a selector term that is not k=v",
        edits: &[],
        args: &["-l", "tier"],
        expect: &["tier"],
    },
    Case {
        name: "a selector that matches nothing",
        edits: &[],
        args: &["-l", "tier=nope"],
        expect: &["tier=nope"],
    },
    Case {
        name: "an unknown environment",
        edits: &[],
        args: &["-e", "qa"],
        expect: &["qa"],
    },
    Case {
        name: "an undefined value in a template",
        edits: &[Replace(BACKEND, "values.logLevel", "values.logLevle")],
        args: &[],
        expect: &["configmap.yaml:", "logLevle"],
    },
    Case {
        name: "a template syntax error",
        edits: &[Replace(BACKEND, "data:", "{% if %}\ndata:")],
        args: &[],
        expect: &["configmap.yaml:"],
    },
    Case {
        name: "a template that renders invalid YAML",
        edits: &[Replace(BACKEND, "data:", "data: [unclosed\n")],
        args: &[],
        expect: &["configmap.yaml"],
    },
    Case {
        name: "a schema violation (minimum)",
        edits: &[],
        args: &["--set", "scale.backend=0"],
        // Located where the release sets the value, not at the schema.
        expect: &["replicas", "platform.yaml:89:19"],
    },
    Case {
        name: "a schema violation (type)",
        edits: &[],
        args: &["--set-string", "scale.backend=three"],
        expect: &["replicas", "platform.yaml:89:19"],
    },
    Case {
        name: "an object without kind",
        edits: &[Write(
            "stacks/charts/backend/templates/extra.yaml",
            "apiVersion: v1\nmetadata:\n  name: extra\n",
        )],
        args: &[],
        expect: &["extra.yaml", "kind"],
    },
    Case {
        name: "an object without name",
        edits: &[Write(
            "stacks/charts/backend/templates/extra.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n",
        )],
        args: &[],
        expect: &["extra.yaml", "name"],
    },
    Case {
        name: "an object without apiVersion",
        edits: &[Write(
            "stacks/charts/backend/templates/extra.yaml",
            "kind: ConfigMap\nmetadata:\n  name: extra\n",
        )],
        args: &[],
        expect: &["extra.yaml", "apiVersion"],
    },
    Case {
        name: "a duplicate object",
        edits: &[Write(
            "stacks/charts/backend/templates/extra.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: backend-config\n",
        )],
        args: &[],
        expect: &["backend-config"],
    },
    Case {
        name: "a values file that does not exist",
        edits: &[Remove("environments/development.yaml")],
        args: &[],
        expect: &["development.yaml"],
    },
    Case {
        name: "a secrets file that does not exist",
        edits: &[Remove(SECRET)],
        args: &[],
        expect: &["db.yaml"],
    },
    Case {
        name: "a tampered secret value",
        edits: &[Replace(SECRET, "data:UvAa3", "data:UvAa4")],
        args: &[],
        expect: &["db.yaml"],
    },
    Case {
        name: "a malformed ENC value",
        edits: &[Replace(
            SECRET,
            "ENC[AES256_GCM,data:+dWqx2UVf4U=",
            "ENC[AES256_GCM,dta:+dWqx2UVf4U=",
        )],
        args: &[],
        expect: &["db.yaml"],
    },
    Case {
        name: "a secrets file without sops metadata",
        edits: &[Write(SECRET, "postgres:\n  password: plain\n")],
        args: &[],
        expect: &["db.yaml", "sops"],
    },
    Case {
        name: "a secret no identity decrypts",
        edits: &[Write(
            "secrets/demo-age-key.txt",
            include_str!("fixtures/sops/keys2.txt"),
        )],
        args: &[],
        expect: &["db.yaml", "age1ue44m360"],
    },
    Case {
        name: "a chart folder that does not exist",
        edits: &[Replace(
            STACK,
            "chart: charts/postgres",
            "chart: charts/postgresql",
        )],
        args: &[],
        expect: &["platform.yaml:", "charts/postgresql"],
    },
    Case {
        name: "malformed YAML in chart values",
        edits: &[Write(
            "stacks/charts/frontend/values.yaml",
            "replicas: [1\n",
        )],
        args: &[],
        expect: &["values.yaml"],
    },
    Case {
        name: "a values.schema.json that is not JSON",
        edits: &[Write(
            "stacks/charts/backend/values.schema.json",
            "{\"type\": ",
        )],
        args: &[],
        expect: &["values.schema.json"],
    },
    Case {
        name: "a timeout that is not a duration",
        edits: &[Replace(STACK, "timeout: 300s", "timeout: five minutes")],
        args: &[],
        expect: &["platform.yaml:", "timeout"],
    },
    Case {
        name: "installed that is not a boolean",
        edits: &[Replace(
            STACK,
            "installed: \"{{ values.frontend.enabled }}\"",
            "installed: maybe",
        )],
        args: &[],
        expect: &["platform.yaml:", "installed"],
    },
    Case {
        name: "an undefined value in a stack-file expression",
        edits: &[Replace(
            STACK,
            "values.postgres.storage",
            "values.postgres.storag",
        )],
        args: &[],
        expect: &["platform.yaml:", "storag"],
    },
    Case {
        name: "a --set without a value",
        edits: &[],
        args: &["--set", "scale.backend"],
        expect: &["scale.backend"],
    },
    Case {
        name: "an invalid name in a namespace the run would create",
        edits: &[
            Replace(
                STACK,
                "namespace: apps\n    chart: charts/frontend",
                "namespace: web\n    chart: charts/frontend",
            ),
            Replace(STACK, "needs: [backend]", "needs: [apps/backend]"),
            Replace(STACK, "    expose: {service: frontend}\n", ""),
            Replace(SERVICE, "name: frontend", "name: FrontEnd"),
        ],
        args: &[],
        expect: &[
            "Kubernetes would refuse an object",
            "Service/FrontEnd of web/frontend, from templates/service.yaml: Service \"FrontEnd\" is invalid: metadata.name",
        ],
    },
    Case {
        name: "a release namespace that is not a valid name",
        edits: &[
            Replace(
                STACK,
                "namespace: apps\n    chart: charts/frontend",
                "namespace: Web_Shop\n    chart: charts/frontend",
            ),
            Replace(STACK, "needs: [backend]", "needs: [apps/backend]"),
        ],
        args: &[],
        expect: &["Web_Shop", "RFC 1123"],
    },
    Case {
        name: "malformed YAML in an environment values file",
        edits: &[Write(
            "environments/development.yaml",
            "images: {backend: [\n",
        )],
        args: &[],
        expect: &["development.yaml"],
    },
];

/// Apply a case's edits; what it takes to undo them.
fn spoil(test: &Test, edits: &[Edit]) -> Vec<(String, Option<String>)> {
    let mut undo = Vec::new();
    for edit in edits {
        let path = match edit {
            Replace(path, ..) | Write(path, _) | Remove(path) => *path,
        };
        let full = test.path().join(path);
        undo.push((path.to_string(), std::fs::read_to_string(&full).ok()));
        match edit {
            Replace(_, from, to) => {
                let text = std::fs::read_to_string(&full).expect("read file");
                assert!(text.contains(from), "{path} has no `{from}`");
                std::fs::write(&full, text.replacen(from, to, 1)).expect("write file");
            }
            Write(_, contents) => std::fs::write(&full, contents).expect("write file"),
            Remove(_) => std::fs::remove_file(&full).expect("remove file"),
        }
    }
    undo
}

fn restore(test: &Test, undo: Vec<(String, Option<String>)>) {
    for (path, contents) in undo.into_iter().rev() {
        let full = test.path().join(&path);
        match contents {
            Some(contents) => std::fs::write(full, contents).expect("restore file"),
            None => {
                let _ = std::fs::remove_file(full);
            }
        }
    }
}

#[test]
fn every_bad_input_exits_1_with_a_located_message_and_writes_nothing() {
    let mut seen = Seen::default();
    let test = Test::example();
    let server = Server::start(test.path(), &[]);
    assert!(CASES.len() >= 30, "{} cases", CASES.len());
    // Against a deployed platform: bad input must not half-change it.
    seen.keep(test.stack(&["apply", "-q"]).success());
    let before = server.mutating();
    let mut failures = Vec::new();
    for case in CASES {
        let undo = spoil(&test, case.edits);
        let mut args = vec!["apply"];
        args.extend_from_slice(case.args);
        let output = seen.keep(test.stack(&args));
        restore(&test, undo);
        let missing: Vec<&&str> = case
            .expect
            .iter()
            .filter(|e| !output.stderr.contains(**e))
            .collect();
        if output.code != 1 || !missing.is_empty() {
            failures.push(format!(
                "{}: exit {} (missing {missing:?})\n{}",
                case.name, output.code, output.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
    let mutating = server.mutating() - before;
    assert_eq!(mutating, 0, "mutating requests during the corpus");
    eprintln!(
        "bad-input corpus: {} cases, 0 mutating requests",
        CASES.len()
    );
    // The deployed platform is untouched.
    seen.keep(test.stack(&["diff", "--detailed-exitcode"]).code(0));
}
