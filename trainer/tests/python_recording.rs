//! Recordings written from Python (`examples/python/write_recording.py`, pyarrow): avm reads
//! them, they satisfy the default contract, and an edit is caught unless the checksum is
//! recomputed the documented way. The script computes avm's content checksum with `zlib`, an
//! independent implementation of the definition.

use avm_trainer::formats::contract::Contract;
use avm_trainer::formats::recording;
use avm_trainer::stages::validate;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python(code: &str, args: &[&Path]) {
    let out = Command::new("python3").arg("-c").arg(code).args(args).output().expect("python3 runs");
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_recording_written_with_pyarrow_is_read_validated_and_edits_are_caught() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("AC99-F0001-E1.parquet");
    let script = repo().join("examples/python/write_recording.py");
    let out = Command::new("python3").arg(&script).arg(&p).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let rec = recording::read(&p).unwrap();
    assert_eq!(rec.meta.format_version, 2);
    assert!(rec.meta.content_crc32.is_some());
    let (m, t, x) = rec.numeric("vib_fan").unwrap();
    assert_eq!((m.sample_rate_hz, x.len()), (2048.0, 2048 * 90));
    assert_eq!(x[5], (0.5 * (2.0 * std::f64::consts::PI * 80.0 * t[5]).sin()) as f32);
    let (_, tn, n1) = rec.numeric("n1_rpm").unwrap();
    assert_eq!((n1.len(), tn[1], n1[0]), (16 * 90, 128.0 / 2048.0, 4800.0));
    assert_eq!(rec.meta.attributes["test_cell"], "TC-2");
    assert_eq!(rec.meta.attributes["ambient_c"], "21.5"); // a JSON number, kept as its text
    let contract = Contract::load(&repo().join("configs/contracts/engine_vibration.yaml")).unwrap();
    let problems = validate::recording(&contract, &rec);
    assert!(problems.is_empty(), "{problems:?}");

    // An edit saved with the old metadata: the content checksum no longer matches.
    let edited = d.path().join("edited.parquet");
    let edit = "import sys, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq\n\
                t = pq.read_table(sys.argv[1])\n\
                t = t.set_column(1, 'vib_fan', pc.multiply(t.column('vib_fan'), pa.scalar(2.0, pa.float32())))\n\
                pq.write_table(t, sys.argv[2])\n";
    python(edit, &[&p, &edited]);
    let e = recording::read(&edited).unwrap_err().to_string();
    assert!(e.contains("differs from the recorded") && e.contains("write_recording.py"), "{e}");

    // The same edit saved with write_recording(): a fresh checksum, read again.
    let resealed = d.path().join("resealed.parquet");
    let reseal = format!(
        "import sys, json, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq\n\
         sys.path.insert(0, {:?})\n\
         from write_recording import write_recording\n\
         t = pq.read_table(sys.argv[1])\n\
         meta = json.loads(t.schema.metadata[b'avm.recording'])\n\
         t = t.set_column(1, 'vib_fan', pc.multiply(t.column('vib_fan'), pa.scalar(2.0, pa.float32())))\n\
         write_recording(sys.argv[2], t, meta)\n",
        script.parent().unwrap().display().to_string()
    );
    python(&reseal, &[&p, &resealed]);
    let again = recording::read(&resealed).unwrap();
    assert_eq!(again.numeric("vib_fan").unwrap().2[5], 2.0 * x[5]);

    // Saved through pandas, the metadata is gone: the error says how to put it back.
    let lost = d.path().join("lost.parquet");
    python(
        "import sys, pyarrow.parquet as pq\n\
         df = pq.read_table(sys.argv[1]).to_pandas()\n\
         df.to_parquet(sys.argv[2])\n",
        &[&p, &lost],
    );
    let e = recording::read(&lost).unwrap_err().to_string();
    assert!(e.contains("not an avm recording") && e.contains("write_recording.py"), "{e}");
}

/// `docs/recording.schema.json` (checked with the `jsonschema` package) and avm agree: on the
/// metadata avm writes, and on metadata each must refuse.
#[test]
fn the_json_schema_and_avm_agree_on_recording_metadata() {
    let d = tempfile::tempdir().unwrap();
    let good = r#"{"format":"avm-recording","format_version":2,"aircraft_id":"R1","engine_id":"M1","flight_id":"F1","channels":[{"name":"vib","unit":"g","sample_rate_hz":100.5,"start_s":0.0}],"attributes":{"load_n":4000,"rig":"PRONOSTIA","clean":true}}"#;
    let bad = [
        (r#""colour":"red","#, "colour"),
        (r#""attributes":{"a/b":"x"},"#, "not a valid identifier"),
        (r#""attributes":{"a":[1]},"#, "is not text, a number or a boolean"),
        (r#""format_version":3,"#, "format_version 3 is not supported"),
    ];
    let mut docs = vec![(good.to_string(), true)];
    for (i, (extra, needle)) in bad.iter().enumerate() {
        // The extra key first: JSON objects with a repeated key keep the last (serde: refused).
        let doc = good.replacen('{', &format!("{{{extra}"), 1);
        let doc = if extra.contains("format_version") {
            good.replace("\"format_version\":2", "\"format_version\":3")
        } else {
            doc
        };
        let doc = if extra.contains("attributes") {
            good.replace(
                r#""attributes":{"load_n":4000,"rig":"PRONOSTIA","clean":true}"#,
                &extra[..extra.len() - 1],
            )
        } else {
            doc
        };
        // avm refuses it, naming the problem.
        let csv = d.path().join(format!("r{i}.csv"));
        std::fs::write(&csv, "time_s,vib\n0.0,1.0\n").unwrap();
        std::fs::write(recording::csv_meta_path(&csv), &doc).unwrap();
        let e = recording::read(&csv).unwrap_err().to_string();
        assert!(e.contains(needle), "{doc}: {e}");
        docs.push((doc, false));
    }
    // A recording avm writes (attributes included) is valid too.
    let csv = d.path().join("good.csv");
    std::fs::write(&csv, "time_s,vib\n0.0,1.0\n").unwrap();
    std::fs::write(recording::csv_meta_path(&csv), good).unwrap();
    let rec = recording::read(&csv).unwrap();
    assert_eq!(rec.meta.attributes["load_n"], "4000");
    let p = d.path().join("written.parquet");
    recording::write_parquet(&rec, &p).unwrap();
    let list = d.path().join("docs.json");
    std::fs::write(&list, serde_json::to_string(&docs).unwrap()).unwrap();
    python(
        "import sys, json, jsonschema, pyarrow.parquet as pq\n\
         schema = json.load(open(sys.argv[1]))\n\
         jsonschema.Draft202012Validator.check_schema(schema)\n\
         v = jsonschema.Draft202012Validator(schema)\n\
         for doc, ok in json.load(open(sys.argv[2])):\n\
         \x20   assert v.is_valid(json.loads(doc)) == ok, (doc, ok)\n\
         written = json.loads(pq.ParquetFile(sys.argv[3]).metadata.metadata[b'avm.recording'])\n\
         assert written['format_version'] == 2 and written['attributes']['load_n'] == '4000', written\n\
         v.validate(written)\n",
        &[&repo().join("docs/recording.schema.json"), &list, &p],
    );
}
