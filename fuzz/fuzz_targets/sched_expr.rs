//! The scheduler's REQUIREMENTS and RANK expressions, evaluated against a host.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stratusd::sched::expr::{
    parse_rank, parse_requirements, rank_error_log_line, requirements_error_log_line,
};

fn host(name: &str) -> Option<String> {
    let v = match name {
        "HOSTNAME" | "NAME" => "node-1.example.org",
        "HYPERVISOR" => "kvm",
        "TOTALCPU" | "FREECPU" => "800",
        "CPUSPEED" => "2.2GHz",
        "TOTALMEMORY" | "FREEMEMORY" => "16777216",
        "USEDMEMORY" | "USEDCPU" => "0",
        "ARCH" => "x86_64",
        _ => return None,
    };
    Some(v.to_string())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_requirements(text) {
        Ok(r) => {
            let _ = r.matches(&host);
        }
        Err(e) => {
            let _ = requirements_error_log_line(text, &e);
        }
    }
    match parse_rank(text) {
        Ok(r) => {
            let _ = r.eval(&host);
            let _ = r.eval_int(&host);
        }
        Err(e) => {
            let _ = rank_error_log_line(text, &e);
        }
    }
});
