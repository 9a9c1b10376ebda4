//! Compiles the admin protocol with protox (a pure-Rust protobuf compiler),
//! so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/courier_admin.proto");
    let descriptors = protox::compile(["proto/courier_admin.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
