//! Generates the tonic service for the gRPC baseline from a Rust description,
//! so no `protoc` is needed.

fn main() {
    let method = |name: &str, route: &str| {
        tonic_build::manual::Method::builder()
            .name(name)
            .route_name(route)
            .input_type("crate::systems::grpc::Num")
            .output_type("crate::systems::grpc::Num")
            .codec_path("tonic_prost::ProstCodec")
            .build()
    };
    let service = tonic_build::manual::Service::builder()
        .name("Bench")
        .package("bench")
        .method(method("call", "Call"))
        .build();
    tonic_build::manual::Builder::new().compile(&[service]);
}
