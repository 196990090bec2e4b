//! The ABI declarations (`src/abi.rs`) against the Envoy binary they are
//! pinned to: every callback declared is exported by it, every callback the
//! built module imports is declared, and the binary's ABI version is the
//! one the module returns. Envoy only warns on a version mismatch; this
//! refuses one. Skipped (with a message) only when there is no Envoy binary.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use tollgate_native::abi::ABI_VERSION;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn envoy() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("TOLLGATE_ENVOY") {
        return Some(PathBuf::from(path));
    }
    let lib = root().join(".venv/lib");
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|d| d.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.exists())
}

/// The names `nm -D` lists for `file`, defined (`T`) or undefined (`U`).
fn symbols(file: &Path, defined: bool) -> BTreeSet<String> {
    let flag = if defined {
        "--defined-only"
    } else {
        "--undefined-only"
    };
    let out = Command::new("nm")
        .args(["-D", flag])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("nm -D {}: {e}", file.display()));
    assert!(out.status.success(), "nm -D {} failed", file.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|s| s.starts_with("envoy_dynamic_module_"))
        .map(str::to_string)
        .collect()
}

fn declared() -> BTreeSet<String> {
    let src = std::fs::read_to_string(root().join("filter-native/src/abi.rs")).unwrap();
    src.split("pub fn ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .filter(|name| name.starts_with("envoy_dynamic_module_callback_"))
        .map(str::to_string)
        .collect()
}

/// Every NUL- or newline-delimited run of the form `vX.Y.Z` in the binary.
fn version_strings(binary: &Path) -> BTreeSet<String> {
    let bytes = std::fs::read(binary).unwrap();
    bytes
        .split(|b| *b == 0 || *b == b'\n')
        .filter(|run| run.len() >= 6 && run.len() <= 16 && run.first() == Some(&b'v'))
        .filter_map(|run| std::str::from_utf8(run).ok())
        .filter(|s| {
            let parts: Vec<&str> = s[1..].split('.').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn every_declared_callback_is_exported_by_the_pinned_envoy() {
    let Some(envoy) = envoy() else {
        eprintln!("SKIPPED: no Envoy binary (.venv or TOLLGATE_ENVOY)");
        return;
    };
    let declared = declared();
    assert!(declared.len() >= 10, "found only {declared:?} in abi.rs");
    let exported = symbols(&envoy, true);
    let missing: Vec<_> = declared.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "abi.rs declares callbacks {} does not export: {missing:?}",
        envoy.display()
    );
}

#[test]
fn the_envoy_binary_speaks_the_abi_version_the_module_returns() {
    let Some(envoy) = envoy() else {
        eprintln!("SKIPPED: no Envoy binary (.venv or TOLLGATE_ENVOY)");
        return;
    };
    let versions = version_strings(&envoy);
    assert!(
        versions.contains(ABI_VERSION),
        "{} does not carry ABI version {ABI_VERSION} (it has {versions:?}): \
         the declarations in abi.rs are for another Envoy; re-pin them",
        envoy.display()
    );
}

#[test]
fn the_built_module_imports_only_declared_callbacks_and_exports_every_hook() {
    let Some(envoy) = envoy() else {
        eprintln!("SKIPPED: no Envoy binary (.venv or TOLLGATE_ENVOY)");
        return;
    };
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"));
    let built: Vec<PathBuf> = ["debug", "native", "release"]
        .iter()
        .map(|p| target.join(p).join("libtollgate_native.so"))
        .filter(|p| p.exists())
        .collect();
    assert!(
        !built.is_empty(),
        "no libtollgate_native.so under {}",
        target.display()
    );
    let exported = symbols(&envoy, true);
    let declared = declared();
    for so in built {
        let imports = symbols(&so, false);
        assert!(!imports.is_empty(), "{} imports no callbacks", so.display());
        for name in &imports {
            assert!(
                declared.contains(name),
                "{} imports undeclared {name}",
                so.display()
            );
            assert!(
                exported.contains(name),
                "{} imports {name}, not in Envoy",
                so.display()
            );
        }
        let hooks = symbols(&so, true);
        for hook in [
            "program_init",
            "http_filter_config_new",
            "http_filter_config_destroy",
            "http_filter_new",
            "http_filter_destroy",
            "http_filter_request_headers",
            "http_filter_request_body",
            "http_filter_request_trailers",
            "http_filter_response_headers",
            "http_filter_response_body",
            "http_filter_response_trailers",
            "http_filter_stream_complete",
            "http_filter_http_callout_done",
            "http_filter_http_stream_headers",
            "http_filter_http_stream_data",
            "http_filter_http_stream_trailers",
            "http_filter_http_stream_complete",
            "http_filter_http_stream_reset",
            "http_filter_scheduled",
            "http_filter_downstream_above_write_buffer_high_watermark",
            "http_filter_downstream_below_write_buffer_low_watermark",
        ] {
            let name = format!("envoy_dynamic_module_on_{hook}");
            assert!(hooks.contains(&name), "{} lacks {name}", so.display());
        }
    }
}

#[test]
fn a_version_scan_finds_only_whole_versions() {
    let dir = std::env::temp_dir().join(format!("tollgate-abi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bin");
    std::fs::write(&file, b"x\0v0.2.0\0v1.2\0va.b.c\0v10.20.30\nv0.2.0x\0").unwrap();
    let found = version_strings(&file);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        vec!["v0.2.0".to_string(), "v10.20.30".to_string()]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_runtime_check_covers_every_declared_callback() {
    let listed: BTreeSet<String> = tollgate_native::abi::CALLBACKS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        listed,
        declared(),
        "abi::CALLBACKS and the extern block differ"
    );
}
