#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cln_wasm_host_fuzz::targets::hook_answer(data));
