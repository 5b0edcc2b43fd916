//! A private HOME and XDG tree for one test of the real binary, removed when dropped: the
//! developer's own config, journals, saved drill fleet and log are neither used nor touched.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("creating a temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_home(&self) -> PathBuf {
        self.path().join("config")
    }

    pub fn state_home(&self) -> PathBuf {
        self.path().join("state")
    }

    /// Where `dake` keeps run journals inside this sandbox.
    pub fn runs(&self) -> PathBuf {
        self.path().join("data").join("dake").join("runs")
    }

    /// The `dake` binary with HOME and every XDG base dir inside this sandbox.
    pub fn dake(&self) -> Command {
        Command::from_std(self.dake_process())
    }

    /// The same, as a plain process, for a test that starts it and kills it.
    pub fn dake_process(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dake"));
        cmd.env("HOME", self.path().join("home"))
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("XDG_STATE_HOME", self.state_home())
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("XDG_CACHE_HOME", self.path().join("cache"))
            .env_remove("RUST_LOG")
            // English whatever the machine's locale: the tests read what it says.
            .env("LANG", "C.UTF-8")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .current_dir(self.path());
        cmd
    }

    /// Runs `dake args…` to completion (two minutes at most).
    pub fn run(&self, args: &[&str]) -> Output {
        self.dake()
            .args(args)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap()
    }

    /// Writes `text` to `rel` (relative to the sandbox), creating parent dirs; returns the path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The journal files written so far, sorted.
    pub fn journals(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.runs()) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        out.sort();
        out
    }
}

/// A command's stdout as JSON; a panic shows both streams when it is not.
pub fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
