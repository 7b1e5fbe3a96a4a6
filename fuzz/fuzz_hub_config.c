/* fuzz_hub_config.c - the config file parser must refuse or accept any text
 * without crashing, and accepted values must be within their limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct hub_config cfg;
	char err[256];
	hub_config_defaults(&cfg);
	if (hub_config_parse_text(&cfg, text, err, sizeof err) == MOTE_OK) {
		if (cfg.mqtt_count > HUB_MAX_LISTENERS ||
		    cfg.broker.max_packet_size > 268435455u || cfg.log_level > MOTE_LOG_OFF)
			__builtin_trap();
	} else if (err[0] == '\0') {
		__builtin_trap(); /* every refusal says why */
	}
	free(text);
	return 0;
}
