// ThreadSanitizer annotations for Debian's (uninstrumented) Abseil
// synchronization library. Built only with SG_SANITIZE=thread.
//
// Why: libabsl_synchronization.so is not built with -fsanitize=thread, so
// TSan cannot see absl::Mutex, CondVar or Notification order anything: the
// lock word is an atomic inside uninstrumented code and waiting is a raw
// futex. Every field guarded by an absl::Mutex would then be reported as a
// race. This shared library, linked ahead of Abseil into every executable of
// a TSan build, interposes the public entry points (ours and gRPC's calls go
// through the PLT), forwards each to the real one (dlsym RTLD_NEXT) and tells
// TSan what it did: acquire after taking a lock, release before giving it up.
// That is the happens-before order an instrumented Abseil would report; lock
// order (deadlock) checking is not modelled.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

template <typename Fn>
Fn Real(const char* mangled) {
  void* sym = dlsym(RTLD_NEXT, mangled);
  if (sym == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found: %s\n", mangled,
                 dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(sym);
}

// One function-local static per entry point: resolved on first use.
#define SG_REAL(type, mangled) \
  static const auto real = Real<type>(mangled)

void Acquire(const void* p) { __tsan_acquire(const_cast<void*>(p)); }
void Release(const void* p) { __tsan_release(const_cast<void*>(p)); }

// A Condition is evaluated with the mutex held, but inside Abseil: by the
// waiter, or by whichever thread unlocks on its behalf, after our Release
// annotation. Each evaluation is bracketed by Acquire/Release of the mutex
// so that what it reads is ordered with the holders before and after it.
class Bracketed {
 public:
  Bracketed(const absl::Condition& cond, absl::Mutex* mu)
      : cond_(cond), mu_(mu), wrapped_(&Bracketed::Eval, this) {}
  Bracketed(const Bracketed&) = delete;
  Bracketed& operator=(const Bracketed&) = delete;
  const absl::Condition& get() const { return wrapped_; }

 private:
  static bool Eval(void* self) {
    auto* b = static_cast<Bracketed*>(self);
    Acquire(b->mu_);
    const bool met = b->cond_.Eval();
    Release(b->mu_);
    return met;
  }
  const absl::Condition& cond_;
  absl::Mutex* const mu_;
  const absl::Condition wrapped_;
};

using MuFn = void (*)(absl::Mutex*);
using MuTryFn = bool (*)(absl::Mutex*);
using MuCondFn = void (*)(absl::Mutex*, const absl::Condition&);
using MuCondTimeoutFn = bool (*)(absl::Mutex*, const absl::Condition&,
                                 absl::Duration);
using MuCondDeadlineFn = bool (*)(absl::Mutex*, const absl::Condition&,
                                  absl::Time);
using CvWaitFn = void (*)(absl::CondVar*, absl::Mutex*);
using CvWaitTimeoutFn = bool (*)(absl::CondVar*, absl::Mutex*, absl::Duration);
using CvWaitDeadlineFn = bool (*)(absl::CondVar*, absl::Mutex*, absl::Time);

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  SG_REAL(MuFn, "_ZN4absl7debian35Mutex4LockEv");
  real(this);
  Acquire(this);
}
void Mutex::ReaderLock() {
  SG_REAL(MuFn, "_ZN4absl7debian35Mutex10ReaderLockEv");
  real(this);
  Acquire(this);
}
void Mutex::Unlock() {
  SG_REAL(MuFn, "_ZN4absl7debian35Mutex6UnlockEv");
  Release(this);
  real(this);
}
void Mutex::ReaderUnlock() {
  SG_REAL(MuFn, "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  Release(this);
  real(this);
}
bool Mutex::TryLock() {
  SG_REAL(MuTryFn, "_ZN4absl7debian35Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}
bool Mutex::ReaderTryLock() {
  SG_REAL(MuTryFn, "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}
void Mutex::LockWhen(const Condition& cond) {
  SG_REAL(MuCondFn, "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  real(this, Bracketed(cond, this).get());
  Acquire(this);
}
void Mutex::ReaderLockWhen(const Condition& cond) {
  SG_REAL(MuCondFn, "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  real(this, Bracketed(cond, this).get());
  Acquire(this);
}
// The *When* variants hold the mutex on return whatever they return.
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  SG_REAL(MuCondTimeoutFn,
          "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_"
          "8DurationE");
  const bool met = real(this, Bracketed(cond, this).get(), timeout);
  Acquire(this);
  return met;
}
bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  SG_REAL(MuCondDeadlineFn,
          "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_"
          "4TimeE");
  const bool met = real(this, Bracketed(cond, this).get(), deadline);
  Acquire(this);
  return met;
}
bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  SG_REAL(MuCondTimeoutFn,
          "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_"
          "9ConditionENS0_8DurationE");
  const bool met = real(this, Bracketed(cond, this).get(), timeout);
  Acquire(this);
  return met;
}
bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  SG_REAL(MuCondDeadlineFn,
          "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_"
          "9ConditionENS0_4TimeE");
  const bool met = real(this, Bracketed(cond, this).get(), deadline);
  Acquire(this);
  return met;
}
// Await gives the mutex up while it waits.
void Mutex::Await(const Condition& cond) {
  SG_REAL(MuCondFn, "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  Release(this);
  real(this, Bracketed(cond, this).get());
  Acquire(this);
}
bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  SG_REAL(MuCondTimeoutFn,
          "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_"
          "8DurationE");
  Release(this);
  const bool met = real(this, Bracketed(cond, this).get(), timeout);
  Acquire(this);
  return met;
}
bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  SG_REAL(MuCondDeadlineFn,
          "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_"
          "4TimeE");
  Release(this);
  const bool met = real(this, Bracketed(cond, this).get(), deadline);
  Acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  SG_REAL(CvWaitFn, "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  Release(mu);
  real(this, mu);
  Acquire(mu);
}
bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  SG_REAL(CvWaitTimeoutFn,
          "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_"
          "8DurationE");
  Release(mu);
  const bool timed_out = real(this, mu, timeout);
  Acquire(mu);
  return timed_out;
}
bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  SG_REAL(CvWaitDeadlineFn,
          "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  Release(mu);
  const bool timed_out = real(this, mu, deadline);
  Acquire(mu);
  return timed_out;
}

using NoteFn = void (*)(Notification*);
using NoteWaitFn = void (*)(const Notification*);
using NoteWaitTimeoutFn = bool (*)(const Notification*, Duration);
using NoteWaitDeadlineFn = bool (*)(const Notification*, Time);

void Notification::Notify() {
  SG_REAL(NoteFn, "_ZN4absl7debian312Notification6NotifyEv");
  Release(this);
  real(this);
}
void Notification::WaitForNotification() const {
  SG_REAL(NoteWaitFn, "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  Acquire(this);
}
bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  SG_REAL(NoteWaitTimeoutFn,
          "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_"
          "8DurationE");
  const bool notified = real(this, timeout);
  if (notified) Acquire(this);
  return notified;
}
bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  SG_REAL(NoteWaitDeadlineFn,
          "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_"
          "4TimeE");
  const bool notified = real(this, deadline);
  if (notified) Acquire(this);
  return notified;
}

using CountFn = void (*)(BlockingCounter*);
using CountDecFn = bool (*)(BlockingCounter*);

bool BlockingCounter::DecrementCount() {
  SG_REAL(CountDecFn, "_ZN4absl7debian315BlockingCounter14DecrementCountEv");
  Release(this);
  return real(this);
}
void BlockingCounter::Wait() {
  SG_REAL(CountFn, "_ZN4absl7debian315BlockingCounter4WaitEv");
  real(this);
  Acquire(this);
}

ABSL_NAMESPACE_END
}  // namespace absl
