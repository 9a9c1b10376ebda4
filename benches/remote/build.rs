//! Compiles the remote crate's protocol (the same file the node uses) with
//! protox, so the bare stream speaks exactly the node's frames.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../remote/proto/courier_remote.proto");
    let descriptors = protox::compile(["courier_remote.proto"], ["../../remote/proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .bytes(".courier.remote.v1.Envelope.payload")
        .compile_fds(descriptors)?;
    Ok(())
}
