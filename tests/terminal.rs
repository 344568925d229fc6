//! The terminal side: shell completions and man pages made from the CLI
//! definition, `--help` examples on every command, and `NO_COLOR`.

use std::process::{Command, Output};

fn dealrules(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every command and subcommand, as the argument lists that reach it.
const COMMANDS: &[&[&str]] = &[
    &["init"],
    &["serve"],
    &["check"],
    &["eval"],
    &["test"],
    &["backtest"],
    &["schema"],
    &["completions"],
    &["man"],
    &["plugin"],
    &["plugin", "new"],
    &["plugin", "build"],
    &["plugin", "test"],
    &["plugin", "inspect"],
    &["token"],
    &["token", "create"],
    &["token", "list"],
    &["token", "revoke"],
];

#[test]
fn completions_name_every_command_in_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = dealrules(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.len() > 1000, "{shell}: {script}");
        for command in [
            "init",
            "serve",
            "check",
            "eval",
            "backtest",
            "completions",
            "plugin",
            "token",
        ] {
            assert!(script.contains(command), "{shell}: no `{command}` in\n{script}");
        }
        // Flags and choices come from the definition too.
        assert!(script.contains("distributor"), "{shell}: no template names");
    }
    let out = dealrules(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_describes_the_commands() {
    let out = dealrules(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH dealrules 1"), "{page}");
    for command in [
        "init",
        "serve",
        "check",
        "eval",
        "test",
        "backtest",
        "completions",
        "man",
    ] {
        assert!(page.contains(command), "no `{command}` in\n{page}");
    }

    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = dealrules(&["man", "--dir", pages.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for name in [
        "dealrules.1",
        "dealrules-init.1",
        "dealrules-serve.1",
        "dealrules-plugin-build.1",
    ] {
        let page = std::fs::read_to_string(pages.join(name)).unwrap();
        assert!(
            page.contains(".SH EXAMPLES") || page.contains("Examples:"),
            "{name}:\n{page}"
        );
    }
}

#[test]
fn every_command_shows_examples_in_its_help() {
    // Every command and subcommand the CLI defines, found from the help's
    // own `Commands:` lists, so a new command cannot be left out.
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(command) = todo.pop() {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        args.push("--help");
        let out = dealrules(&args);
        let help = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{command:?}: {}", text(&out.stderr));
        let examples = help
            .split_once("Example")
            .unwrap_or_else(|| panic!("{command:?} --help has no examples:\n{help}"))
            .1;
        assert!(examples.contains("dealrules"), "{command:?}:\n{help}");
        seen += 1;
        if let Some((_, list)) = help.split_once("Commands:\n") {
            for line in list.lines().take_while(|l| l.starts_with("  ")) {
                let name = line.split_whitespace().next().unwrap_or_default();
                if !name.is_empty() && name != "help" {
                    let mut sub = command.clone();
                    sub.push(name.to_string());
                    todo.push(sub);
                }
            }
        }
    }
    assert!(seen > COMMANDS.len(), "only {seen} commands found");
}

#[test]
fn no_color_turns_colour_off_even_when_forced() {
    let run = |no_color: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dealrules"));
        c.arg("--help").env("CLICOLOR_FORCE", "1").env_remove("NO_COLOR");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        text(&c.output().unwrap().stdout)
    };
    // Forced colour shows escapes, so their absence below means something.
    assert!(run(None).contains('\u{1b}'));
    assert!(!run(Some("1")).contains('\u{1b}'));
    // An empty NO_COLOR does not count (no-color.org).
    assert!(run(Some("")).contains('\u{1b}'));

    let out = Command::new(env!("CARGO_BIN_EXE_dealrules"))
        .arg("no-such-command")
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out.stderr).contains('\u{1b}'), "{}", text(&out.stderr));
}

/// `dealrules test | head` used to panic ("failed printing to stdout:
/// Broken pipe") with exit 101; a reader that goes away ends it quietly.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    for args in [
        vec!["test", rules.to_str().unwrap()],
        vec!["schema"],
        vec!["man"],
        vec!["completions", "zsh"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dealrules"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
