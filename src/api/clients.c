/* clients.c - whether anyone listens to live events (see api.h). */
#include "api/api.h"
#include "api/api_int.h"

bool api_has_listeners(const struct api *a)
{
	return a && atomic_load_explicit(&((struct api *)a)->nclients, memory_order_relaxed) > 0;
}
