// Package controllers holds Herald's reconcilers: one for Notifications (fan
// out, aggregate), one per delivery channel, and one each for providers,
// recipients, templates, schedules and event rules.
package controllers
