//! The XML-RPC request decoder: any body either decodes or gets a fault, and a decoded call
//! encodes to a body that decodes to the same method.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stratusd::xmlrpc::{encode_call, parse_method_call};

fuzz_target!(|data: &[u8]| {
    if let Ok(call) = parse_method_call(data) {
        let again = parse_method_call(encode_call(&call).as_bytes())
            .expect("an encoded call decodes");
        assert_eq!(again.method, call.method);
        assert_eq!(again.params.len(), call.params.len());
    }
});
