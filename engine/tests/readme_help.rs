//! The README shows `engine --help` verbatim; this keeps it in sync with the binary (regenerate
//! the block from `engine --help` when a flag changes).

#[test]
fn readme_shows_the_current_engine_help() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("### `engine --help`\n```text\n")
        .expect("README has the help block")
        + "### `engine --help`\n```text\n".len();
    let len = readme[start..].find("\n```").expect("help block is closed");
    assert_eq!(
        readme[start..start + len].trim_end(),
        help.trim_end(),
        "README's `engine --help` block is stale"
    );
    // Every flag the help lists is documented by being in the README.
    for word in help.split_whitespace().filter(|w| w.starts_with("--")) {
        let flag = word.trim_end_matches([',', '.']);
        assert!(readme.contains(flag), "{flag} missing from README");
    }
}
