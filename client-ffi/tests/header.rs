//! `include/hearth.h` is what cbindgen writes from `src/lib.rs` today (a C program never
//! compiles against a stale header). `HEARTH_WRITE_HEADER=1` rewrites it.

type R = Result<(), Box<dyn std::error::Error>>;

#[test]
fn the_committed_header_is_what_cbindgen_generates_from_the_source() -> R {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml"))?;
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(format!("{dir}/src/lib.rs"))
        .generate()?
        .write(&mut generated);
    let path = format!("{dir}/include/hearth.h");
    if std::env::var_os("HEARTH_WRITE_HEADER").is_some() {
        std::fs::write(&path, &generated)?;
    }
    let committed = std::fs::read(&path)?;
    assert!(
        committed == generated,
        "include/hearth.h is stale: HEARTH_WRITE_HEADER=1 cargo test -p hearth-ffi --test header"
    );
    Ok(())
}
