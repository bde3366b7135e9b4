//! The gRPC face of gradlab: the generated code, proto <-> domain conversions, validation, and
//! the `Experiments` service.

pub mod pb {
    // Generated code: a Progress event is a step record or a whole Job, sizes differ by design.
    #![allow(clippy::large_enum_variant)]
    tonic::include_proto!("gradlab.v1");

    /// The encoded descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("gradlab_descriptor");
}

pub mod auth;
pub mod convert;
pub mod convert_sweep;
pub mod metrics;
pub mod request_size;
pub mod server;
pub mod service;
pub mod status;
pub mod watch_stream;
pub mod web;
