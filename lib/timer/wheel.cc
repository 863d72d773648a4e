// The wheel is header-only (templated advance); this unit anchors the library.
#include "timer/wheel.h"
