//! Every input the fuzzers kept (`fuzz/corpus/TARGET/`), replayed through
//! the same target bodies (`fuzz/src/targets.rs`) on the stable toolchain:
//! what once crashed stays fixed, and CI needs no nightly.

#[path = "../../fuzz/src/targets.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_kept_input_replays_without_a_fault() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (name, target) in targets::TARGETS {
        let dir = corpus.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{} holds no input", dir.display());
        for input in &inputs {
            let data = std::fs::read(input).unwrap();
            let replayed = std::panic::catch_unwind(|| target(&data));
            assert!(replayed.is_ok(), "{name}: {} faults", input.display());
        }
        eprintln!("{name}: {} inputs replayed", inputs.len());
    }
}
