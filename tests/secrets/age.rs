//! Plain age files: the vectors made with the real age CLI decrypt to their
//! plaintexts; age files of YAML work as `secrets:` and are masked; files
//! `stack secrets encrypt --age` writes decrypt with the real `age -d`, and
//! the other way round.

use std::io::Write as _;

use super::{fixtures, run_in};
use crate::harness::Test;

/// A folder holding the age vectors and both identity files.
fn vectors() -> Test {
    let test = Test::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("age-") || name.starts_with("keys") {
            std::fs::copy(&path, test.path().join(&name)).unwrap();
        }
    }
    test
}

#[test]
fn every_age_vector_decrypts_to_its_plaintext() {
    let test = vectors();
    for (file, key, plaintext) in [
        ("age-hello.txt.age", "keys.txt", "age-hello.txt"),
        ("age-hello.txt.armored.age", "keys.txt", "age-hello.txt"),
        ("age-hello.two-recipients.age", "keys.txt", "age-hello.txt"),
        ("age-hello.two-recipients.age", "keys2.txt", "age-hello.txt"),
        ("age-large.txt.age", "keys.txt", "age-large.txt"),
        ("age-large.txt.armored.age", "keys.txt", "age-large.txt"),
    ] {
        let output = test
            .stack(&["secrets", "decrypt", file, "--age-key-file", key])
            .success();
        assert!(output.stdout == test.read(plaintext), "{file} with {key}");
    }
}

#[test]
fn a_passphrase_file_decrypts_with_the_passphrase_only() {
    let test = vectors().env("XDG_CONFIG_HOME", "/nonexistent");
    let file = "age-hello.passphrase.age";
    let missing = test.stack(&["secrets", "decrypt", file]).code(1);
    assert!(
        missing.stderr.contains(
            "age-hello.passphrase.age: the age file is protected by a passphrase and none was given"
        ) && missing.stderr.contains("hint: set STACK_AGE_PASSPHRASE"),
        "{}",
        missing.stderr
    );
    let test = test.env("STACK_AGE_PASSPHRASE", "wrong-horse");
    let wrong = test.stack(&["secrets", "decrypt", file]).code(1);
    assert!(
        wrong
            .stderr
            .contains("age-hello.passphrase.age: wrong passphrase"),
        "{}",
        wrong.stderr
    );
    let test = test.env("STACK_AGE_PASSPHRASE", "correct-horse-battery");
    let output = test.stack(&["secrets", "decrypt", file]).success();
    assert_eq!(output.stdout, test.read("age-hello.txt"));
}

#[test]
fn an_age_file_nobody_can_decrypt_names_its_stanzas_and_the_identities_tried() {
    let test = vectors();
    let output = test
        .stack(&[
            "secrets",
            "decrypt",
            "age-hello.txt.age",
            "--age-key-file",
            "keys2.txt",
        ])
        .code(1);
    assert!(
        output
            .stderr
            .contains("age-hello.txt.age: no identity can decrypt it (recipients: 1 X25519)")
            && output
                .stderr
                .contains("hint: identities tried: --age-key-file keys2.txt"),
        "{}",
        output.stderr
    );
}

fn recipient(test: &Test, key: &str) -> String {
    test.read(key)
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string()
}

/// A stack whose release takes `secrets: [secrets/app.age]`, a key, a
/// `.sops.yaml` for it, and that file as `stack secrets encrypt --age` wrote
/// it from `secrets/app.yaml`.
fn stack_with_an_age_secret() -> Test {
    let test = Test::new()
        .configmap_chart("charts/cm")
        .file(
            "stack.yaml",
            "releases:\n  - {name: app, chart: charts/cm, secrets: [secrets/app.age]}\n",
        )
        .file(
            "secrets/app.yaml",
            "data:\n  token: s3cr3t-token-value\n  user: admin\n",
        );
    test.stack(&["secrets", "keygen", "--output-file", "key.txt"])
        .success();
    let recipient = recipient(&test, "key.txt");
    std::fs::write(
        test.path().join(".sops.yaml"),
        format!("creation_rules:\n  - path_regex: secrets/\n    age: {recipient}\n"),
    )
    .unwrap();
    let args = ["secrets", "encrypt", "--age", "secrets/app.yaml"];
    test.stack(&[&args[..], &["--output-file", "secrets/app.age"]].concat())
        .success();
    test
}

#[test]
fn an_age_file_of_values_is_a_secrets_layer_and_is_masked() {
    let test = stack_with_an_age_secret();
    let encrypted = test.read("secrets/app.age");
    assert!(
        encrypted.starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
            && !encrypted.contains("s3cr3t"),
        "{encrypted}"
    );
    let masked = test
        .stack(&["template", "--age-key-file", "key.txt"])
        .success();
    assert!(
        masked.stdout.contains("token: (sensitive value)") && !masked.stdout.contains("s3cr3t"),
        "{}",
        masked.stdout
    );
    let shown = test
        .stack(&["template", "--age-key-file", "key.txt", "--show-secrets"])
        .success();
    assert!(
        shown.stdout.contains("token: s3cr3t-token-value"),
        "{}",
        shown.stdout
    );
}

#[test]
fn age_files_round_trip_with_the_real_age_cli() {
    let Some(age) = crate::harness::external_tool("STACK_AGE", "age") else {
        return;
    };
    let test = stack_with_an_age_secret();
    let theirs = run_in(
        &test,
        &age,
        &["-d", "-i", "key.txt", "secrets/app.age"],
        &[],
    )
    .success();
    assert_eq!(theirs.stdout, test.read("secrets/app.yaml"));
    let recipient = recipient(&test, "key.txt");
    let args = [
        "-e",
        "-r",
        &recipient,
        "-o",
        "secrets/app.age",
        "secrets/app.yaml",
    ];
    run_in(&test, &age, &args, &[]).success();
    let ours = test
        .stack(&[
            "secrets",
            "decrypt",
            "secrets/app.age",
            "--age-key-file",
            "key.txt",
        ])
        .success();
    assert_eq!(ours.stdout, test.read("secrets/app.yaml"));
    let masked = test
        .stack(&["template", "--age-key-file", "key.txt"])
        .success();
    assert!(
        masked.stdout.contains("token: (sensitive value)"),
        "{}",
        masked.stdout
    );
}

#[test]
fn a_passphrase_is_asked_for_on_the_terminal() {
    let Some(script) = crate::harness::external_tool("STACK_SCRIPT", "script") else {
        return;
    };
    let test = vectors();
    let command = format!(
        "{} secrets decrypt age-hello.passphrase.age",
        env!("CARGO_BIN_EXE_stack")
    );
    // `script` runs stack on a pseudo-terminal and types its stdin there.
    let mut child = std::process::Command::new(script)
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(test.path())
        .env_remove("STACK_AGE_PASSPHRASE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct-horse-battery\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{terminal}");
    assert!(
        terminal.contains("Passphrase for age-hello.passphrase.age: ")
            && terminal.contains("Hello from the age CLI!"),
        "{terminal}"
    );
}
