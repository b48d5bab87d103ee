//! `mpno reproduce` regenerates every experiment, and every row of every CSV it writes has
//! measured <= bound; rows with an infinite bound say why in the note column.

use std::process::Command;

#[test]
fn reproduce_writes_csvs_whose_rows_respect_their_bounds() {
    let out = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(env!("CARGO_BIN_EXE_mpno"))
        .args([
            "reproduce",
            "--experiments",
            &format!("{root}/experiments"),
            "--figures",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let (mut files, mut rows, mut infinite) = (0, 0, 0);
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".csv") || name.ends_with("_crossover.csv") {
            continue;
        }
        files += 1;
        let mut rdr = csv::Reader::from_path(&path).unwrap();
        let h = rdr.headers().unwrap().clone();
        let col = |k: &str| h.iter().position(|c| c == k).unwrap();
        let (mi, bi, ni) = (col("measured"), col("bound"), col("note"));
        for rec in rdr.records() {
            let r = rec.unwrap();
            let (m, b): (f64, f64) = (r[mi].parse().unwrap(), r[bi].parse().unwrap());
            assert!(
                m <= b || (m.is_infinite() && b.is_infinite()),
                "{name}: {r:?}"
            );
            if b.is_infinite() {
                assert!(
                    !r[ni].is_empty(),
                    "{name}: infinite bound without a reason: {r:?}"
                );
                infinite += 1;
            }
            rows += 1;
        }
    }
    println!("{files} result files, {rows} rows, {infinite} with an infinite (explained) bound");
    assert!(files >= 9 && rows > 1000);
}
