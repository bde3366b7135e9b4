//! Compiles proto/ with protox (pure Rust: no protoc on the machine) and generates the tonic
//! client and server; writes the descriptor set for gRPC reflection; lists the dashboard's
//! files (web/static) for the binary to embed.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=migrations");
    let fds = protox::compile(["gradlab/v1/gradlab.proto"], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("gradlab_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    embed_web(&out)?;
    Ok(())
}

/// Writes `web_assets.rs`: `&[(path under web/static, include_bytes!(file))]`, sorted, so the
/// binary serves the dashboard with nothing on disk.
fn embed_web(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=web/static");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("web/static");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        // rerun-if-changed on a directory sees its own entries only, not deeper files.
        println!("cargo:rerun-if-changed={}", dir.display());
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                println!("cargo:rerun-if-changed={}", path.display());
                files.push(path);
            }
        }
    }
    files.sort();
    let mut code = String::from("&[\n");
    for f in files {
        let rel = f.strip_prefix(&root)?.to_str().ok_or("non-UTF-8 file name in web/static")?.replace('\\', "/");
        code.push_str(&format!("    ({rel:?}, include_bytes!({:?})),\n", f.display().to_string()));
    }
    code.push_str("]\n");
    std::fs::write(out.join("web_assets.rs"), code)?;
    Ok(())
}
