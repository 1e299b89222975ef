package v1alpha1

// LabelShardKey assigns an object to a controller shard. A controller run
// with --watch-label-selector sees only the Notifications, ChannelDeliveries,
// NotificationSchedules and EventRules its selector matches, the way Flux's
// controllers shard on sharding.fluxcd.io/key. The controllers copy the
// label from a Notification to its deliveries and from a schedule or an
// event rule to the Notifications it creates, so a Notification's whole
// work stays in one shard. docs/scaling.md describes the setup.
const LabelShardKey = "sharding.herald.dev/key"
