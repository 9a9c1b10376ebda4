//! Compiles the node protocol with protox (a pure-Rust protobuf compiler),
//! so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/courier_remote.proto");
    let descriptors = protox::compile(["proto/courier_remote.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Payloads are kept for a possible rejection while in flight:
        // `Bytes` makes that a reference count, not a copy.
        .bytes(".courier.remote.v1.Envelope.payload")
        .compile_fds(descriptors)?;
    Ok(())
}
