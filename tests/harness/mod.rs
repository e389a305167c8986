//! A fluent harness that runs the real `stack` binary in a temporary
//! directory: `Test::example().args(["list"]).run().success().stdout`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The repository root, which holds the example platform.
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Test {
    /// An empty working directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    /// A working directory holding a copy of the example platform.
    pub fn example() -> Self {
        let test = Self::new();
        for folder in ["stacks", "environments", "secrets"] {
            copy_dir(&repository().join(folder), &test.path().join(folder));
        }
        let sops_config = repository().join(".sops.yaml");
        if sops_config.exists() {
            std::fs::copy(&sops_config, test.path().join(".sops.yaml")).expect("copy file");
        }
        test
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file (creating folders) relative to the working directory.
    pub fn file(self, path: &str, contents: &str) -> Self {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create folders");
        std::fs::write(path, unindent(contents)).expect("write file");
        self
    }

    /// A chart with one ConfigMap named after the release, carrying `values.data`.
    pub fn configmap_chart(self, folder: &str) -> Self {
        self.file(
            &format!("{folder}/templates/configmap.yaml"),
            "
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ release.name }}
            data: {{ values.data | default({}) | tojson }}
            ",
        )
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path().join(path)).expect("read file")
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Run from a subfolder of the working directory.
    pub fn cwd(mut self, folder: &str) -> Self {
        self.cwd = Some(self.path().join(folder));
        self
    }

    pub fn run(&self) -> Output {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.stack(&args)
    }

    /// Run `stack` with these arguments.
    pub fn stack(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stack"));
        command
            .args(args)
            .current_dir(self.cwd.as_deref().unwrap_or(self.path()))
            .env("NO_COLOR", "1")
            .env_remove("STACK_ENVIRONMENT")
            .env_remove("STACK_FILE")
            .env_remove("KUBECONFIG");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let output = command.output().expect("run stack");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Output {
    #[track_caller]
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code, expected,
            "exit code {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn success(self) -> Self {
        self.code(0)
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.stdout))
    }
}

/// Strip the common leading indentation of a Rust string literal, and the
/// first newline, so that files can be written inline in tests.
pub fn unindent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: String = text
        .lines()
        .map(|line| line.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    out = out.trim_end().to_string();
    out.push('\n');
    out
}

fn copy_dir(from: &Path, to: &Path) {
    if !from.exists() {
        return;
    }
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            if entry.file_name() == ".stack" {
                continue;
            }
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}
