// libFuzzer target: the SessionService's request validation and conversion
// (server/service/session_service, session_calls, session_stream, convert)
// on hostile requests, unary and on a Stream, end to end into a real store. The first byte picks the method, the rest is the
// request message. The service runs in-process behind gRPC's in-process
// channel, as one node would serve it. A bad request must get a clear
// error: UNKNOWN (an unhandled path) or DATA_LOSS (a corrupt store) aborts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "grpcpp/grpcpp.h"
#include "server/service/session_service.h"
#include "server/store/session_backend.h"
#include "sessiongrid/v1/session.grpc.pb.h"
#include "tests/fuzz/fuzz_store.h"

namespace v1 = ::sessiongrid::v1;

namespace {

struct Node {
  sg::store::LocalBackend backend{&sg::fuzz::FuzzStore()};
  // Client-chosen ids on, so that path is fuzzed too.
  sg::service::SessionServiceImpl service{&backend, /*allow_client_ids=*/true};
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<v1::SessionService::Stub> stub;

  Node() {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service);
    builder.SetMaxReceiveMessageSize(8 << 20);
    server = builder.BuildAndStart();
    if (!server) {
      std::fprintf(stderr, "session_service_fuzzer: server did not start\n");
      std::abort();
    }
    stub = v1::SessionService::NewStub(
        server->InProcessChannel(grpc::ChannelArguments()));
  }
};

Node& TheNode() {
  static Node* node = new Node();
  return *node;
}

template <typename Req, typename Resp, typename Call>
void Run(const uint8_t* bytes, size_t size, Call call) {
  Req request;
  if (!request.ParseFromArray(bytes, static_cast<int>(size))) return;
  Resp response;
  grpc::ClientContext ctx;
  grpc::Status status = call(&ctx, request, &response);
  if (status.error_code() == grpc::StatusCode::UNKNOWN ||
      status.error_code() == grpc::StatusCode::DATA_LOSS) {
    std::fprintf(stderr, "session_service_fuzzer: code %d: %s\n",
                 static_cast<int>(status.error_code()),
                 status.error_message().c_str());
    std::abort();
  }
}

// The rest as one StreamRequest on a Stream: every reply, and the stream's
// end, must carry a clear code.
void RunStream(v1::SessionService::Stub& stub, const uint8_t* bytes,
               size_t size) {
  v1::StreamRequest request;
  if (!request.ParseFromArray(bytes, static_cast<int>(size))) return;
  grpc::ClientContext ctx;
  auto stream = stub.Stream(&ctx);
  stream->Write(request);
  stream->WritesDone();
  v1::StreamResponse response;
  int replies = 0;
  while (stream->Read(&response)) {
    for (const v1::StreamReply& reply : response.replies()) {
      ++replies;
      const int code = reply.status().code();
      if (code == grpc::StatusCode::UNKNOWN ||
          code == grpc::StatusCode::DATA_LOSS) {
        std::fprintf(stderr, "session_service_fuzzer: stream reply code %d: %s\n",
                     code, reply.status().message().c_str());
        std::abort();
      }
    }
  }
  const grpc::Status status = stream->Finish();
  // Each call is answered once, and only a stream that ran is OK.
  if (!status.ok() || replies != request.calls_size()) {
    std::fprintf(stderr,
                 "session_service_fuzzer: stream ended %d (%s) after %d of "
                 "%d replies\n",
                 static_cast<int>(status.error_code()),
                 status.error_message().c_str(), replies,
                 request.calls_size());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  v1::SessionService::Stub& stub = *TheNode().stub;
  const uint8_t method = bytes[0] % 12;
  ++bytes;
  --size;
#define SG_FUZZ_CALL(Method)                                                 \
  Run<v1::Method##Request, v1::Method##Response>(                            \
      bytes, size,                                                           \
      [&](grpc::ClientContext* ctx, const v1::Method##Request& req,          \
          v1::Method##Response* resp) { return stub.Method(ctx, req, resp); })
  switch (method) {
    case 0: SG_FUZZ_CALL(Create); break;
    case 1: SG_FUZZ_CALL(Get); break;
    case 2: SG_FUZZ_CALL(Touch); break;
    case 3: SG_FUZZ_CALL(Update); break;
    case 4: SG_FUZZ_CALL(Delete); break;
    case 5: SG_FUZZ_CALL(Regenerate); break;
    case 6: SG_FUZZ_CALL(ListByPrincipal); break;
    case 7: SG_FUZZ_CALL(DeleteByPrincipal); break;
    case 8: SG_FUZZ_CALL(BatchGet); break;
    case 9: SG_FUZZ_CALL(BatchCreate); break;
    case 10: SG_FUZZ_CALL(ListSessions); break;
    case 11: RunStream(stub, bytes, size); break;
  }
#undef SG_FUZZ_CALL
  return 0;
}
