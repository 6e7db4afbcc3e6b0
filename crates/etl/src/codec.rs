//! Serialising this project's operators into Ballista plans.
//!
//! The scan and the writer travel from the client to the scheduler and on to
//! the executors inside Ballista's plan messages. Their settings are plain
//! serde structs ([`ScanSpec`], [`WriteSpec`]); this codec frames them as JSON
//! behind a marker and hands every other node to Ballista's own codec, which
//! must see its shuffle operators unchanged.

use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};

use crate::allowed::AllowedLocations;
use crate::extract::scan::{RawScanExec, ScanSpec};
use crate::load::writer::{ParquetWriterExec, WriteSpec};

/// Starts every node this codec writes. 0xFF is not a valid protobuf field
/// tag, so no node of Ballista's can start with it.
const MARKER: &[u8] = b"\xFFsparkify-lake:";

#[derive(Serialize, Deserialize)]
enum LakeNode {
    Scan(ScanSpec),
    Write(WriteSpec),
}

/// Our operators first, then whatever codec the engine brings.
#[derive(Debug)]
pub struct LakeCodec {
    inner: Arc<dyn PhysicalExtensionCodec>,
    /// Where decoded operators may read and write; checked as they are
    /// decoded, before any task runs.
    allowed: AllowedLocations,
}

impl LakeCodec {
    pub fn new(inner: Arc<dyn PhysicalExtensionCodec>, allowed: AllowedLocations) -> Self {
        Self { inner, allowed }
    }

    /// Refuses a node that reads or writes outside the allowed locations.
    fn check(&self, node: &LakeNode) -> Result<()> {
        match node {
            LakeNode::Scan(spec) => self.allowed.check(&spec.root, "reads"),
            LakeNode::Write(spec) => {
                self.allowed.check(&spec.location, "writes")?;
                spec.attempts
                    .iter()
                    .try_for_each(|attempts| self.allowed.check(attempts, "writes"))
            }
        }
    }
}

impl PhysicalExtensionCodec for LakeCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(json) = buf.strip_prefix(MARKER) else {
            return self.inner.try_decode(buf, inputs, ctx, proto_converter);
        };
        let node: LakeNode = serde_json::from_slice(json)
            .map_err(|e| DataFusionError::Internal(format!("undecodable plan node: {e}")))?;
        self.check(&node)?;
        match (node, inputs) {
            (LakeNode::Scan(spec), [input]) => {
                Ok(Arc::new(RawScanExec::try_new(spec, Arc::clone(input))?))
            }
            (LakeNode::Write(spec), [input]) => Ok(Arc::new(ParquetWriterExec::try_new(
                spec,
                Arc::clone(input),
            )?)),
            _ => Err(DataFusionError::Internal(
                "plan node with the wrong number of inputs".into(),
            )),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let lake_node = if let Some(scan) = node.downcast_ref::<RawScanExec>() {
            LakeNode::Scan(scan.spec().clone())
        } else if let Some(write) = node.downcast_ref::<ParquetWriterExec>() {
            LakeNode::Write(write.spec().clone())
        } else {
            return self.inner.try_encode(node, buf, proto_converter);
        };
        buf.extend_from_slice(MARKER);
        serde_json::to_writer(buf, &lake_node)
            .map_err(|e| DataFusionError::Internal(format!("encoding plan node: {e}")))
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}
