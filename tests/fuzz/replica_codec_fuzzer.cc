// libFuzzer target: the peer protocol's messages from a hostile or broken
// peer. The bytes are an ApplyRequest (what ReplicaService.Apply receives);
// each mutation goes through replica_codec into a real store, then is read
// back. The same bytes as a CoordinateRequest exercise the forwarded
// compare-and-set conversion.
#include <cstddef>
#include <cstdint>

#include "server/replication/replica_codec.h"
#include "tests/fuzz/fuzz_store.h"

namespace rpb = ::sessiongrid::replica::v1;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  rpb::ApplyRequest apply;
  if (apply.ParseFromArray(bytes, static_cast<int>(size))) {
    sg::store::SessionStore& store = sg::fuzz::FuzzStore();
    for (const rpb::Mutation& m : apply.mutations()) {
      const std::string& id = sg::replication::MutationId(m);
      (void)sg::replication::ApplyMutation(store, m);
      absl::StatusOr<sg::store::LocalEntry> entry = store.ReadLocal(id);
      if (entry.ok()) {
        rpb::Entry out;
        sg::replication::ToReplica(id, *entry, &out);
        (void)out.ByteSizeLong();
      }
    }
  }
  rpb::CoordinateRequest coordinate;
  if (coordinate.ParseFromArray(bytes, static_cast<int>(size)) &&
      coordinate.has_update()) {
    sg::store::UpdateParams params =
        sg::replication::FromForward(coordinate.update());
    sessiongrid::v1::UpdateRequest back;
    sg::replication::ToForward(coordinate.update().id(), params, &back);
    (void)back.ByteSizeLong();
  }
  return 0;
}
