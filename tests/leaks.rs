//! One leak checker over every command's output and every file `stack`
//! writes: a multi-line key and a token with URL-unsafe characters, carried
//! into a ConfigMap in every form a chart reaches for (verbatim, a block
//! scalar, `tojson`, base64, filters, slices), never appear in any encoding.

use crate::harness::{Output, Test, secret_forms as forms};

/// A private key (multi-line) and a token, as the secrets file holds them.
const KEY: &str = "-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7leakcheck01\n\
Zq3xWv9TnR4sLk8YpB2mHd6uFj0cVa5eXoGi1KbNwTyQzArPlM7Ds3hUeJ4tOvCn\n\
-----END PRIVATE KEY-----";
const TOKEN: &str = "tok/9f2e+Kx7=q&leak check";

/// Fail when `text` (what `what` printed or wrote) holds any form of a secret.
fn assert_no_leak(what: &str, text: &str) {
    for secret in [KEY, TOKEN] {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "{what} leaks a secret as {form:?}:\n{text}"
            );
        }
    }
}

fn printed(output: &Output) -> String {
    format!("{}{}", output.stdout, output.stderr)
}

/// The example platform with the key and token in an encrypted secrets
/// file, and a release whose chart carries them into a ConfigMap.
fn leaky() -> Test {
    let secrets = format!(
        "tls:\n  key: |\n{}\n  token: {}\n",
        KEY.lines()
            .map(|line| format!("    {line}"))
            .collect::<Vec<_>>()
            .join("\n"),
        serde_json::to_string(TOKEN).unwrap()
    );
    let test = Test::example().file(
        "stacks/charts/leaky/templates/configmap.yaml",
        r#"
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: leaky
        data:
          verbatim: {{ values.token | quote }}
          block: |
        {{ values.key | indent(4) }}
          json: {{ values | tojson | quote }}
          base64: {{ values.token | b64encode }}
          upper: {{ values.token | upper | quote }}
          slice: {{ values.token[:16] | quote }}
          replaced: {{ values.key | replace("\n", " ") | quote }}
          config: {{ ("mode = strict, token = " ~ values.token) | upper | quote }}
          size: "{{ values.size }}"
        "#,
    );
    std::fs::write(test.path().join("secrets/development/tls.yaml"), secrets).unwrap();
    test.stack(&[
        "secrets",
        "encrypt",
        "--in-place",
        "secrets/development/tls.yaml",
    ])
    .success();
    let stack_file = test.path().join("stacks/platform.yaml");
    let platform = std::fs::read_to_string(&stack_file)
        .unwrap()
        .replacen(
            "secrets: [../secrets/development/db.yaml]",
            "secrets: [../secrets/development/db.yaml, ../secrets/development/tls.yaml]",
            1,
        )
        .replacen(
            "releases:\n",
            "releases:\n  - name: leaky\n    namespace: apps\n    chart: charts/leaky\n    values:\n      - key: \"{{ values.tls.key }}\"\n        token: \"{{ values.tls.token }}\"\n        size: \"{{ values.leakySize | default(1) }}\"\n",
            1,
        );
    std::fs::write(&stack_file, platform).unwrap();
    test
}

#[test]
fn no_command_prints_or_writes_a_secret_in_any_form() {
    let test = leaky();
    let shown = test
        .stack(&["template", "--show-secrets", "-l", "name=leaky"])
        .success();
    assert!(
        shown.stdout.contains(TOKEN) && shown.stdout.contains(&TOKEN.to_uppercase()),
        "the chart carries the secrets: {}",
        shown.stdout
    );
    let mut outputs = Vec::new();
    for args in [
        &["template"][..],
        &["template", "-o", "json"],
        &["template", "--output-dir", "rendered"],
        &["lint"],
        &["diff"],
        &["apply", "-v"],
        &["diff", "--set", "leakySize=2"],
        &["diff", "--set", "leakySize=2", "-o", "json"],
        &["apply", "-v", "--set", "leakySize=2"],
        &["apply", "-v", "-o", "json", "--set", "leakySize=3"],
        &["status"],
        &["list", "-o", "json"],
        &["rollback", "apps/leaky", "1"],
        &["env", "diff", "development", "staging"],
    ] {
        let output = test.stack(args);
        outputs.push((args.join(" "), printed(&output)));
    }
    // The cluster holds the secrets: they were deployed, only hidden.
    let journal = test.read("stacks/.stack/cluster/development/journal");
    assert!(journal.contains(TOKEN), "the ConfigMap was applied");
    // A template whose output is not YAML shows the offending line masked.
    std::fs::write(
        test.path()
            .join("stacks/charts/leaky/templates/broken.yaml"),
        "kind: ConfigMap\nbroken: {{ values.token }}: [\n",
    )
    .unwrap();
    let broken = test.stack(&["template", "-l", "name=leaky"]).code(1);
    assert!(broken.stderr.contains("broken.yaml"), "{}", broken.stderr);
    outputs.push(("template of a broken chart".into(), printed(&broken)));
    for (what, text) in &outputs {
        assert_no_leak(what, text);
    }
    // What surrounds a secret stays readable.
    assert!(
        outputs[0]
            .1
            .contains("config: MODE = STRICT, TOKEN = (sensitive value)\n"),
        "{}",
        outputs[0].1
    );
    for file in crate::harness::files_under(test.path()) {
        let relative = file.strip_prefix(test.path()).unwrap();
        // The simulated cluster's own store holds what was deployed, as etcd
        // does; the secrets files hold ciphertext.
        if relative.ends_with("journal") || relative.starts_with("secrets") {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&file) {
            assert_no_leak(&relative.display().to_string(), &text);
        }
    }
    assert!(
        test.path().join("rendered").exists(),
        "template --output-dir wrote files to check"
    );
}

#[test]
fn every_suite_checks_every_command_output_for_the_stack_secrets() {
    let test = Test::example();
    let known = test.known_secrets();
    assert!(
        known.iter().any(|secret| secret == "dev-s3cret-password"),
        "the harness decrypts the example's secrets: {known:?}"
    );
    let leaked = Output {
        code: 0,
        stdout: "password: ZGV2LXMzY3JldC1wYXNzd29yZA==\n".into(),
        stderr: String::new(),
    };
    let caught = std::panic::catch_unwind(|| test.assert_no_known_secret(&["template"], &leaked));
    assert!(
        caught.is_err(),
        "base64 of a secret in output fails the test"
    );
    // What `stack` prints is checked by the harness itself.
    let template = test.stack(&["template", "-e", "development"]).success();
    assert!(template.stdout.contains("(sensitive value)"));
}
