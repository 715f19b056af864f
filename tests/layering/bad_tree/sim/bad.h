// A deliberate layering violation: the check must reject it.
#include "hmm/hmm.h"
