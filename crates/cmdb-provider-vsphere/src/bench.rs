//! Entry points for this crate's criterion benchmarks (`benches/`): the decoding of a
//! `RetrievePropertiesEx` answer into hosts, exactly as a listing runs it. Not a stable
//! API.

use cmdb_core::{Host, Result};

use crate::map::to_host;
use crate::model::{RetrieveResult, VirtualMachine};
use crate::soap::{parse_envelope, Reply};

/// Parses a `RetrievePropertiesEx` SOAP answer and maps its virtual machines to hosts of
/// vCenter `region` and `datacenter`.
pub fn decode_page(xml: &[u8], region: &str, datacenter: &str) -> Result<Vec<Host>> {
    let Reply::Answer(answer) = parse_envelope(xml)? else {
        return Err(cmdb_core::Error::decode("a SOAP fault"));
    };
    let chunk = RetrieveResult::from_answer(answer)?;
    let mut hosts = Vec::with_capacity(chunk.objects.len());
    for object in chunk
        .objects
        .iter()
        .filter(|o| o.obj.kind == "VirtualMachine")
    {
        let vm = VirtualMachine::from_object(object)?;
        hosts.extend(to_host(&vm, region, datacenter));
    }
    Ok(hosts)
}
