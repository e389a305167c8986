//! `stack secrets edit` with an editor script: only the edited value gets a
//! new ciphertext, the temporary file is private and gone afterwards, and
//! nothing is written when nothing changed or the edit is invalid.

use std::collections::BTreeSet;
use std::path::Path;

use super::{assert_real_sops_decrypts, encrypted_for_first_key, run_in};
use crate::harness::{Output, Test};

/// An editor that records the file it was given (and its and its folder's
/// modes) next to itself, then runs `change` on it (`$1`).
fn editor(test: &Test, change: &str) -> String {
    let script = format!(
        "echo \"$1\" > \"$(dirname \"$0\")/edited-path\"\n\
         stat -c '%a' \"$1\" \"$(dirname \"$1\")\" > \"$(dirname \"$0\")/edited-modes\"\n\
         {change}\n"
    );
    std::fs::write(test.path().join("editor.sh"), script).unwrap();
    std::fs::create_dir_all(test.path().join("tmp")).unwrap();
    // With an argument, as `$EDITOR` may be.
    format!("sh {}", test.path().join("editor.sh").display())
}

fn edit(test: &Test, editor: &str, file: &str, key: &str) -> Output {
    let stack = Path::new(env!("CARGO_BIN_EXE_stack"));
    let tmp = test.path().join("tmp").display().to_string();
    run_in(
        test,
        stack,
        &["secrets", "edit", file, "--age-key-file", key],
        &[
            ("EDITOR", editor.into()),
            ("VISUAL", String::new()),
            ("TMPDIR", tmp),
        ],
    )
}

/// The `ENC[…]` strings of a file's values (not its comments, which edit
/// does not keep, nor the MAC in the `sops` block).
fn ciphertexts(text: &str) -> BTreeSet<String> {
    let values = text
        .split_once("\nsops:")
        .or_else(|| text.split_once("\"sops\":"))
        .map_or(text, |(values, _)| values);
    values
        .split("ENC[")
        .skip(1)
        .filter_map(|rest| rest.split(']').next())
        .filter(|enc| !enc.ends_with("type:comment"))
        .map(|enc| format!("ENC[{enc}]"))
        .collect()
}

#[track_caller]
fn assert_temporary_files_are_gone(test: &Test) {
    let edited = test.read("edited-path");
    assert!(
        !Path::new(edited.trim()).exists(),
        "{edited} is still there"
    );
    let left: Vec<_> = std::fs::read_dir(test.path().join("tmp"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

fn decrypt(test: &Test, file: &str, key: &str) -> String {
    test.stack(&["secrets", "decrypt", file, "--age-key-file", key])
        .success()
        .stdout
}

#[test]
fn edit_gives_only_the_changed_value_a_new_ciphertext() {
    let (test, _, _) = encrypted_for_first_key();
    let before = test.read("secrets/db.yaml");
    let editor = editor(&test, "sed -i 's/hunter22/hunter23/' \"$1\"");
    let output = edit(&test, &editor, "secrets/db.yaml", "a.txt").success();
    assert!(output.stderr.contains("re-encrypted"), "{}", output.stderr);
    assert_eq!(test.read("edited-modes"), "600\n700\n");
    assert_temporary_files_are_gone(&test);
    let after = test.read("secrets/db.yaml");
    let (old, new) = (ciphertexts(&before), ciphertexts(&after));
    assert_eq!(old.difference(&new).count(), 1, "{before}\n{after}");
    assert_eq!(new.difference(&old).count(), 1, "{before}\n{after}");
    let user = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("user:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(user(&after), user(&before));
    let metadata = |text: &str| text.split_once("\nsops:").unwrap().1.to_string();
    assert_ne!(metadata(&after), metadata(&before), "a new MAC");
    let plain = decrypt(&test, "secrets/db.yaml", "a.txt");
    assert!(
        plain.contains("password: hunter23") && plain.contains("user: admin"),
        "{plain}"
    );
    assert_real_sops_decrypts(&test, "a.txt", "secrets/db.yaml", "password: hunter23");
}

#[test]
fn edit_keeps_the_ciphertexts_and_types_of_files_sops_wrote() {
    for (vector, from, to) in [
        (
            "types.enc.yaml",
            "plain_string: hello$",
            "plain_string: bye",
        ),
        ("data.enc.json", "p4ssw0rd", "p4ssw0rd2"),
    ] {
        let test = Test::new();
        for file in [vector, "keys.txt"] {
            std::fs::copy(super::fixtures().join(file), test.path().join(file)).unwrap();
        }
        let before = test.read(vector);
        let plain_from = from.trim_end_matches('$');
        assert!(
            decrypt(&test, vector, "keys.txt").contains(plain_from),
            "{vector}"
        );
        let editor = editor(&test, &format!("sed -i 's/{from}/{to}/' \"$1\""));
        edit(&test, &editor, vector, "keys.txt").success();
        let after = test.read(vector);
        let (old, new) = (ciphertexts(&before), ciphertexts(&after));
        assert_eq!(old.difference(&new).count(), 1, "{vector}:\n{after}");
        assert_eq!(new.difference(&old).count(), 1, "{vector}:\n{after}");
        assert!(decrypt(&test, vector, "keys.txt").contains(to), "{vector}");
        assert_real_sops_decrypts(&test, "keys.txt", vector, to);
    }
}

#[test]
fn edit_without_changes_writes_nothing() {
    let (test, _, _) = encrypted_for_first_key();
    let before = test.read("secrets/db.yaml");
    let editor = editor(&test, "true");
    let output = edit(&test, &editor, "secrets/db.yaml", "a.txt").success();
    assert!(
        output.stderr.contains("no changes, nothing written"),
        "{}",
        output.stderr
    );
    assert_eq!(test.read("secrets/db.yaml"), before);
    assert_temporary_files_are_gone(&test);
}

#[test]
fn an_invalid_edit_or_a_failed_editor_leaves_the_file_untouched() {
    for (change, message) in [
        (
            "printf 'password: [unclosed\\n' > \"$1\"",
            "the edited text is not valid YAML",
        ),
        ("exit 3", "failed: it exited with status 3"),
    ] {
        let (test, _, _) = encrypted_for_first_key();
        let before = test.read("secrets/db.yaml");
        let editor = editor(&test, change);
        let output = edit(&test, &editor, "secrets/db.yaml", "a.txt").code(1);
        assert!(output.stderr.contains(message), "{}", output.stderr);
        assert!(
            output.stderr.contains("hint: the file is unchanged"),
            "{}",
            output.stderr
        );
        assert_eq!(test.read("secrets/db.yaml"), before);
        assert_temporary_files_are_gone(&test);
    }
}

#[test]
fn editing_a_new_file_encrypts_it_per_the_creation_rules() {
    let (test, _, _) = encrypted_for_first_key();
    let editor = editor(&test, "printf 'token: abc123-secret\\n' > \"$1\"");
    let output = edit(&test, &editor, "secrets/new.yaml", "a.txt").success();
    assert!(output.stderr.contains("created"), "{}", output.stderr);
    assert_temporary_files_are_gone(&test);
    let encrypted = test.read("secrets/new.yaml");
    assert!(
        !encrypted.contains("abc123") && encrypted.contains("ENC["),
        "{encrypted}"
    );
    assert!(decrypt(&test, "secrets/new.yaml", "a.txt").contains("token: abc123-secret"));
    assert_real_sops_decrypts(&test, "a.txt", "secrets/new.yaml", "token: abc123-secret");
}

#[test]
fn ctrl_c_during_the_edit_still_removes_the_plaintext() {
    use std::os::unix::process::CommandExt as _;
    let (test, _, _) = encrypted_for_first_key();
    let before = test.read("secrets/db.yaml");
    // What Ctrl-C does: SIGINT to the whole foreground process group.
    let editor = editor(&test, "kill -INT 0");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stack"))
        .args([
            "secrets",
            "edit",
            "secrets/db.yaml",
            "--age-key-file",
            "a.txt",
        ])
        .current_dir(test.path())
        .env("EDITOR", editor)
        .env_remove("VISUAL")
        .env("TMPDIR", test.path().join("tmp"))
        .process_group(0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("it was killed by a signal"), "{stderr}");
    assert_eq!(test.read("secrets/db.yaml"), before);
    assert_temporary_files_are_gone(&test);
}
