// Anchors the header-only flow library and checks its headers compile alone.
#include "flow/key.h"
#include "flow/pool.h"
#include "flow/table.h"
#include "flow/time_wait.h"
