//! Checks the docker compose stack under `deploy/` without running it: the compose file's
//! services, healthchecks and start order, that no secret is written in it, the Debezium
//! connector config, the helper script, and that every engine flag the deploy files mention
//! exists in `engine --help`. `docker compose config` runs only where the compose plugin works.

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(name: &str) -> String {
    let path = deploy_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn compose() -> Yaml {
    serde_yaml::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML")
}

fn service<'a>(doc: &'a Yaml, name: &str) -> &'a Yaml {
    doc.get("services")
        .and_then(|s| s.get(name))
        .unwrap_or_else(|| panic!("service `{name}` missing"))
}

/// A compose list-or-string field flattened to one string (healthcheck test, command).
fn joined(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Sequence(items) => items
            .iter()
            .map(|i| match i {
                Yaml::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => panic!("expected a string or list, got {other:?}"),
    }
}

fn depends_condition(doc: &Yaml, svc: &str, on: &str) -> String {
    service(doc, svc)
        .get("depends_on")
        .and_then(|d| d.get(on))
        .and_then(|d| d.get("condition"))
        .and_then(Yaml::as_str)
        .unwrap_or_else(|| panic!("{svc} must depend_on {on} with a condition"))
        .to_string()
}

#[test]
fn compose_has_the_services_with_healthchecks_and_ordered_start() {
    let doc = compose();
    for svc in [
        "postgres", "kafka", "connect", "engine", "datagen", "kafka-ui",
    ] {
        service(&doc, svc);
    }
    for svc in ["postgres", "kafka", "connect", "engine"] {
        let hc = service(&doc, svc)
            .get("healthcheck")
            .unwrap_or_else(|| panic!("{svc} has no healthcheck"));
        assert!(
            !joined(hc.get("test").expect("healthcheck.test")).is_empty(),
            "{svc}: empty healthcheck"
        );
    }

    let pg = service(&doc, "postgres");
    assert!(pg["image"].as_str().unwrap().starts_with("postgres:16"));
    assert!(joined(&pg["command"]).contains("wal_level=logical"));
    assert!(joined(&pg["healthcheck"]["test"]).contains("pg_isready"));
    let pg_volume = joined(&pg["volumes"]);
    assert!(
        pg_volume.starts_with("pgdata:"),
        "named volume: {pg_volume}"
    );
    assert!(doc["volumes"].get("pgdata").is_some());

    let kafka = service(&doc, "kafka");
    let image = kafka["image"].as_str().unwrap();
    assert!(image.starts_with("apache/kafka") || image.starts_with("bitnami/kafka"));
    let env = serde_yaml::to_string(&kafka["environment"]).unwrap();
    assert!(env.contains("broker,controller"), "KRaft roles");
    assert!(!env.to_lowercase().contains("zookeeper"));
    assert!(doc["services"].get("zookeeper").is_none());

    let connect = service(&doc, "connect");
    assert!(connect["image"]
        .as_str()
        .unwrap()
        .starts_with("quay.io/debezium/connect:2.7"));
    assert!(joined(&connect["healthcheck"]["test"]).contains(":8083/connectors"));
    assert_eq!(
        depends_condition(&doc, "connect", "kafka"),
        "service_healthy"
    );
    assert_eq!(
        depends_condition(&doc, "connect", "postgres"),
        "service_healthy"
    );

    let engine = service(&doc, "engine");
    assert_eq!(
        engine["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );
    let cmd = joined(&engine["command"]);
    for part in [
        "--source kafka://kafka:9092",
        "--listen 0.0.0.0:8080",
        "--api-token ${SHOPSTREAM_API_TOKEN",
        "--kafka-sink kafka:9092",
    ] {
        assert!(cmd.contains(part), "engine command lacks `{part}`: {cmd}");
    }
    assert_eq!(joined(&engine["ports"]), "127.0.0.1:8080:8080");
    assert_eq!(
        depends_condition(&doc, "engine", "kafka"),
        "service_healthy"
    );

    let datagen = service(&doc, "datagen");
    assert_eq!(
        datagen["image"], engine["image"],
        "datagen uses the engine image"
    );
    assert_eq!(
        depends_condition(&doc, "datagen", "postgres"),
        "service_healthy"
    );
    assert!(joined(&datagen["entrypoint"]).contains("datagen"));

    let ui = service(&doc, "kafka-ui");
    assert_eq!(joined(&ui["profiles"]), "ui");

    // Every published port binds loopback only.
    for (name, svc) in doc["services"].as_mapping().unwrap() {
        if let Some(ports) = svc.get("ports") {
            for p in ports.as_sequence().unwrap() {
                let p = p.as_str().unwrap();
                assert!(
                    p.starts_with("127.0.0.1:"),
                    "{name:?} publishes {p} publicly"
                );
            }
        }
    }
}

/// Keys whose values are secrets must be `${...}` substitutions, never literals.
fn check_no_secret_literals(v: &Yaml, path: &str) {
    match v {
        Yaml::Mapping(m) => {
            for (k, val) in m {
                let k = k.as_str().unwrap_or_default();
                let lower = k.to_ascii_lowercase();
                if lower.contains("password") || lower.contains("token") || lower == "database_url"
                {
                    let s = val.as_str().unwrap_or_default();
                    assert!(
                        s.contains("${"),
                        "{path}.{k} holds a literal secret instead of a ${{...}} from .env"
                    );
                }
                check_no_secret_literals(val, &format!("{path}.{k}"));
            }
        }
        Yaml::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                check_no_secret_literals(item, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

#[test]
fn compose_holds_no_secret_literals() {
    let text = read("docker-compose.yml");
    check_no_secret_literals(&compose(), "");
    // A postgres URL names its password only through substitution.
    for line in text.lines().filter(|l| l.contains("postgres://")) {
        let creds = line
            .split("postgres://")
            .nth(1)
            .and_then(|rest| rest.split('@').next())
            .unwrap_or_default();
        assert!(
            creds.contains("${POSTGRES_PASSWORD}"),
            "URL with literal credentials: {line}"
        );
    }
    // The values of .env.example must not leak into the compose file.
    for line in read(".env.example").lines() {
        if let Some((key, value)) = line.split_once('=') {
            if key.contains("PASSWORD") || key.contains("TOKEN") {
                assert!(!text.contains(value), "{key}'s example value is in compose");
            }
        }
    }
    assert!(read(".gitignore").lines().any(|l| l.trim() == ".env"));
}

#[test]
fn connector_config_is_complete() {
    let doc: Json = serde_json::from_str(&read("debezium/postgres-connector.json"))
        .expect("connector JSON parses");
    assert!(doc["name"].is_string());
    let cfg = &doc["config"];
    let expect = [
        (
            "connector.class",
            "io.debezium.connector.postgresql.PostgresConnector",
        ),
        ("plugin.name", "pgoutput"),
        ("slot.name", "debezium_slot"),
        ("publication.name", "dbz_publication"),
        ("publication.autocreate.mode", "filtered"),
        ("provide.transaction.metadata", "true"),
        ("topic.prefix", "ecommerce-cdc"),
        ("decimal.handling.mode", "precise"),
        ("tombstones.on.delete", "true"),
        (
            "key.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("key.converter.schemas.enable", "false"),
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("value.converter.schemas.enable", "false"),
    ];
    for (key, value) in expect {
        assert_eq!(cfg[key].as_str(), Some(value), "{key}");
    }
    let listed: BTreeSet<&str> = cfg["table.include.list"]
        .as_str()
        .expect("table.include.list")
        .split(',')
        .map(str::trim)
        .collect();
    let wanted: BTreeSet<String> = sources::Table::ALL
        .iter()
        .map(|t| format!("public.{}", t.name()))
        .collect();
    let wanted: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
    assert_eq!(listed, wanted);
    for key in ["database.user", "database.password", "database.dbname"] {
        let v = cfg[key].as_str().unwrap_or_default();
        assert!(
            v.starts_with("${"),
            "{key} must be a config-provider placeholder, got {v}"
        );
    }
    // The placeholders resolve through the provider the compose file configures on the worker.
    let text = read("docker-compose.yml");
    assert!(text.contains("EnvVarConfigProvider"));
    assert!(!cfg.as_object().unwrap().keys().any(|k| k.starts_with('_')));
}

#[test]
fn connector_script_is_executable_and_parses() {
    use std::os::unix::fs::PermissionsExt;
    for script in ["connector.sh", "datagen-entrypoint.sh"] {
        let path = deploy_dir().join(script);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, "{script} is not executable");
    }
    let path = deploy_dir().join("connector.sh");
    let text = read("connector.sh");
    assert!(text.contains("set -euo pipefail"));
    assert!(text.contains("${CONNECT_URL:-http://localhost:8083}"));
    let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A bad argument prints the usage and fails, before any network access.
    let out = Command::new("bash")
        .arg(&path)
        .arg("frobnicate")
        .env("CONNECT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
    let out = Command::new("sh")
        .arg("-n")
        .arg(deploy_dir().join("datagen-entrypoint.sh"))
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// `--flag` tokens of one text, `--flag=value` cut at `=`.
fn flags_in(text: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for (i, _) in text.match_indices("--") {
        let before = text[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '-') {
            continue;
        }
        let name: String = text[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name.len() > 1 && name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            flags.insert(format!("--{name}"));
        }
    }
    flags
}

#[test]
fn engine_flags_in_deploy_files_exist() {
    let out = Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("--help")
        .output()
        .expect("run engine --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let known = flags_in(&help);

    // The compose file: only the engine service's command.
    let doc = compose();
    let cmd = joined(&service(&doc, "engine")["command"]);
    let mut mentioned = flags_in(&cmd);
    // The README: lines that run the engine (not docker, datagen or curl lines).
    for line in read("README.md").lines() {
        let l = line.trim_start();
        if l.contains("engine ") && !l.contains("datagen") && !l.contains("docker") {
            mentioned.extend(flags_in(l));
        }
    }
    assert!(mentioned.contains("--kafka-sink"), "sanity: {mentioned:?}");
    let missing: Vec<_> = mentioned.difference(&known).collect();
    assert!(
        missing.is_empty(),
        "flags mentioned for the engine but not in `engine --help`: {missing:?}"
    );
}

#[test]
fn compose_config_validates_when_docker_compose_exists() {
    let works = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !works {
        eprintln!("skipped: `docker compose version` does not work here");
        return;
    }
    // `config` needs no engine; .env.example stands in for the real .env.
    let out = Command::new("docker")
        .current_dir(deploy_dir())
        .args([
            "compose",
            "--env-file",
            ".env.example",
            "-f",
            "docker-compose.yml",
            "config",
            "-q",
        ])
        .output()
        .expect("run docker compose config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("Cannot connect to the Docker daemon") {
        eprintln!("skipped: docker compose config needs a daemon here: {stderr}");
        return;
    }
    assert!(out.status.success(), "docker compose config: {stderr}");
}
