//! Several `key_groups` with `shamir_threshold` in `.sops.yaml`: on
//! encryption and in `updatekeys`, readable by the real sops, and files the
//! real sops writes with them readable by stack.

use std::path::Path;

use super::{encrypted_for_first_key, password_ciphertext, run_in};
use crate::harness::{Output, Test};

fn groups_rule(a: &str, b: &str, threshold: u8) -> String {
    format!(
        "creation_rules:\n  - path_regex: secrets/\n    shamir_threshold: {threshold}\n    key_groups:\n      - age: [{a}]\n      - age:\n          - {b}\n"
    )
}

/// `program decrypt secrets/db.yaml` with these identity files in
/// SOPS_AGE_KEY (the real sops, or stack).
fn decrypt_with(test: &Test, keys: &[&str]) -> Output {
    decrypt_by(
        test,
        Path::new(env!("CARGO_BIN_EXE_stack")),
        &["secrets"],
        keys,
    )
}

fn decrypt_by(test: &Test, program: &Path, command: &[&str], keys: &[&str]) -> Output {
    let identities: String = keys.iter().map(|k| test.read(k)).collect();
    let args: Vec<&str> = command
        .iter()
        .chain(&["decrypt", "secrets/db.yaml"])
        .copied()
        .collect();
    run_in(test, program, &args, &[("SOPS_AGE_KEY", identities)])
}

/// `secrets/db.yaml` in clear text, and a rule naming two key groups
/// (`a.txt`, `b.txt`), both needed.
fn plaintext_under_two_of_two_groups() -> Test {
    let (test, a, b) = encrypted_for_first_key();
    std::fs::write(test.path().join(".sops.yaml"), groups_rule(&a, &b, 2)).unwrap();
    let args = ["secrets", "decrypt", "--in-place", "secrets/db.yaml"];
    test.stack(&[&args[..], &["--age-key-file", "a.txt"]].concat())
        .success();
    test
}

/// stack, and the real sops when present, decrypt `secrets/db.yaml` with
/// both identities and refuse either alone.
#[track_caller]
fn assert_only_both_identities_decrypt(test: &Test) {
    let stack = Path::new(env!("CARGO_BIN_EXE_stack"));
    let sops = crate::harness::external_tool("STACK_SOPS", "sops");
    let mut runs = vec![(stack, &["secrets"][..], 1)];
    if let Some(sops) = &sops {
        runs.push((sops.as_path(), &[][..], 128));
    }
    for (program, command, refused) in runs {
        let both = decrypt_by(test, program, command, &["a.txt", "b.txt"]).success();
        assert!(
            both.stdout.contains("password: hunter22"),
            "{}",
            both.stdout
        );
        for one in ["a.txt", "b.txt"] {
            let output = decrypt_by(test, program, command, &[one]).code(refused);
            assert!(output.stderr.contains("decrypt"), "{}", output.stderr);
        }
    }
}

#[test]
fn two_of_two_key_groups_need_both_identities_also_after_rotate() {
    let test = plaintext_under_two_of_two_groups();
    test.stack(&["secrets", "encrypt", "--in-place", "secrets/db.yaml"])
        .success();
    let encrypted = test.read("secrets/db.yaml");
    assert!(
        encrypted.contains("shamir_threshold: 2")
            && encrypted.matches("recipient: age1").count() == 2,
        "{encrypted}"
    );
    assert_only_both_identities_decrypt(&test);
    let before = password_ciphertext(&test);
    let keys = test.read("a.txt") + &test.read("b.txt");
    let stack = Path::new(env!("CARGO_BIN_EXE_stack"));
    let rotate = ["secrets", "rotate", "secrets/db.yaml"];
    run_in(&test, stack, &rotate, &[("SOPS_AGE_KEY", keys)]).success();
    assert_ne!(password_ciphertext(&test), before, "a new data key");
    assert_only_both_identities_decrypt(&test);
}

#[test]
fn updatekeys_splits_the_data_key_across_key_groups_and_keeps_the_values() {
    let (test, a, b) = encrypted_for_first_key();
    let before = password_ciphertext(&test);
    std::fs::write(test.path().join(".sops.yaml"), groups_rule(&a, &b, 2)).unwrap();
    super::update_keys(&test, "a.txt");
    assert_eq!(
        password_ciphertext(&test),
        before,
        "values keep their ciphertext"
    );
    assert_only_both_identities_decrypt(&test);
}

#[test]
fn a_threshold_sops_cannot_split_for_is_refused() {
    let (test, a, b) = encrypted_for_first_key();
    let before = test.read("secrets/db.yaml");
    for threshold in [1, 3] {
        std::fs::write(
            test.path().join(".sops.yaml"),
            groups_rule(&a, &b, threshold),
        )
        .unwrap();
        let output = test
            .stack(&[
                "secrets",
                "updatekeys",
                "secrets/db.yaml",
                "--age-key-file",
                "a.txt",
            ])
            .code(1);
        assert!(
            output
                .stderr
                .contains("shamir_threshold must be a number from 2 to 2"),
            "{}",
            output.stderr
        );
        assert_eq!(test.read("secrets/db.yaml"), before);
    }
}

#[test]
fn files_real_sops_writes_with_key_groups_decrypt_with_stack() {
    let Some(sops) = crate::harness::external_tool("STACK_SOPS", "sops") else {
        return;
    };
    let test = plaintext_under_two_of_two_groups();
    run_in(
        &test,
        &sops,
        &["encrypt", "--in-place", "secrets/db.yaml"],
        &[],
    )
    .success();
    let both = decrypt_with(&test, &["a.txt", "b.txt"]).success();
    assert!(
        both.stdout.contains("password: hunter22"),
        "{}",
        both.stdout
    );
    decrypt_with(&test, &["b.txt"]).code(1);
}
