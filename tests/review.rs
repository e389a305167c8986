//! `stack diff` in review: the plan as a pull-request comment
//! (`-o markdown`), masked and kept under a size limit.

use crate::harness::Test;

fn deployed() -> Test {
    let test = Test::example().rolling_backend();
    test.stack(&["apply", "-q"]).success();
    test
}

#[test]
fn the_markdown_comment_has_a_headline_a_table_and_a_section_per_release() {
    let test = deployed();
    let comment = test
        .stack(&[
            "diff",
            "-o",
            "markdown",
            "-l",
            "name=backend",
            "--set",
            "images.backend.tag=1.6.0",
            "--detailed-exitcode",
        ])
        .code(2);
    insta::assert_snapshot!(comment.stdout, @"
    ### `stack diff` — development: 1 release changing (0 to create, 1 to change, 0 to delete)

    | release | create | change | delete |
    |---|---:|---:|---:|
    | `apps/backend` | 0 | 1 | 0 |

    <details><summary><code>apps/backend</code>: 0 to create, 1 to change, 0 to delete</summary>

    ```diff
    ~ Deployment/apps/backend (changed)
    @@ -25,7 +25,7 @@
         spec:
           containers:
           - name: backend
    -        image: registry.example.com/shop/backend:1.5.0
    +        image: registry.example.com/shop/backend:1.6.0
             ports:
             - name: http
               containerPort: 8080
    ```

    </details>
    ");
    let none = test.stack(&["diff", "-o", "markdown"]).success();
    assert_eq!(none.stdout, "### `stack diff` — development: no changes\n");
}

#[test]
fn the_markdown_comment_masks_secrets_and_stays_under_its_size_limit() {
    let test = deployed();
    let args = [
        "diff",
        "-o",
        "markdown",
        "--set-string",
        "postgres.password=n3w-s3cret-value",
        "--set",
        "images.backend.tag=1.6.0",
        "--set",
        "images.frontend.tag=2.3.0",
    ];
    let whole = test.stack(&args).success();
    assert!(
        !whole.stdout.contains("n3w-s3cret-value"),
        "{}",
        whole.stdout
    );
    assert!(
        whole.stdout.contains("(sensitive value changed: "),
        "{}",
        whole.stdout
    );
    assert!(!whole.stdout.contains("shortened"), "{}", whole.stdout);
    for limit in [1_500, 3_000, 6_000] {
        let short = test
            .stack(&[&args[..], &["--max-bytes", &limit.to_string()]].concat())
            .success();
        assert!(
            short.stdout.len() <= limit,
            "{limit}: {} bytes",
            short.stdout.len()
        );
        assert!(
            short
                .stdout
                .contains("lines cut) to keep this comment under"),
            "{}",
            short.stdout
        );
        assert_eq!(
            short.stdout.matches("<details>").count(),
            whole.stdout.matches("<details>").count(),
            "a release's section was dropped"
        );
        assert_eq!(
            short.stdout.matches("```diff").count(),
            short.stdout.matches("```\n").count()
        );
    }
}

#[test]
fn markdown_is_the_output_of_diff_only() {
    let test = Test::example();
    let refused = test.stack(&["list", "-o", "markdown"]).code(1);
    assert!(
        refused
            .stderr
            .contains("`-o markdown` is the output of `stack diff` only"),
        "{}",
        refused.stderr
    );
}

/// What bash completes for `words` (the last one being completed), with
/// the script of `stack completions bash` loaded, in the test's folder.
fn bash_completes(test: &Test, script: &str, words: &[&str]) -> Vec<String> {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_stack"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "{script}\nCOMP_WORDS=({}); COMP_CWORD={}; COMP_TYPE=9; _clap_complete_stack stack '{}' stack; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        quoted.join(" "),
        words.len() - 1,
        words.last().unwrap()
    );
    let output = std::process::Command::new("bash")
        .args(["-c", &program])
        .current_dir(test.path())
        .env("PATH", path)
        .env_remove("STACK_FILE")
        .output()
        .expect("run bash");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_environments_and_release_names_from_the_stack() {
    let test = Test::example();
    let script = test.stack(&["completions", "bash"]).success().stdout;
    let checked = std::process::Command::new("bash")
        .args(["-n", "-c", &script])
        .output()
        .expect("run bash -n");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert_eq!(
        bash_completes(&test, &script, &["stack", "history", "ba"]),
        ["backend"]
    );
    assert_eq!(
        bash_completes(&test, &script, &["stack", "rollback", "wo"]),
        ["worker"]
    );
    assert_eq!(
        bash_completes(&test, &script, &["stack", "-e", "st"]),
        ["staging"]
    );
    assert_eq!(
        bash_completes(&test, &script, &["stack", "diff", "-l", "name=f"]),
        ["name=frontend"]
    );
    assert!(bash_completes(&test, &script, &["stack", "dest"]).contains(&"destroy".to_string()));
    for shell in ["zsh", "fish", "powershell"] {
        let script = test.stack(&["completions", shell]).success().stdout;
        assert!(script.contains("STACK_COMPLETE"), "{shell}: {script}");
    }
    let refused = test.stack(&["completions", "tcsh"]).code(1);
    assert!(
        refused
            .stderr
            .contains("no completions for the shell `tcsh`"),
        "{}",
        refused.stderr
    );
}
