/*
 * names.c - printable names of packet types, for logs and metrics.
 */
#include "mqtt/mqtt.h"

const char *mqtt_type_name(uint8_t type)
{
	static const char *const names[] = {
		[MQTT_CONNECT] = "CONNECT",	    [MQTT_CONNACK] = "CONNACK",
		[MQTT_PUBLISH] = "PUBLISH",	    [MQTT_PUBACK] = "PUBACK",
		[MQTT_PUBREC] = "PUBREC",	    [MQTT_PUBREL] = "PUBREL",
		[MQTT_PUBCOMP] = "PUBCOMP",	    [MQTT_SUBSCRIBE] = "SUBSCRIBE",
		[MQTT_SUBACK] = "SUBACK",	    [MQTT_UNSUBSCRIBE] = "UNSUBSCRIBE",
		[MQTT_UNSUBACK] = "UNSUBACK",	    [MQTT_PINGREQ] = "PINGREQ",
		[MQTT_PINGRESP] = "PINGRESP",	    [MQTT_DISCONNECT] = "DISCONNECT",
		[MQTT_AUTH] = "AUTH",
	};
	if (type >= sizeof names / sizeof names[0] || names[type] == NULL)
		return "?";
	return names[type];
}
