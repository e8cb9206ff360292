#include "server/store/session_store.h"
