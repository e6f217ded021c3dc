// Package runnerimages embeds the scripts the runner pool jobs deliver into
// each allocation (see embed.go). Its tests check what runs inside an
// allocation (the Linux runner image and the raw_exec bootstrap scripts):
// shellcheck, the Dockerfile's pins, the checksum tables agreeing, and the
// scripts' behaviour with a fake runner (checksum refusal, the JIT config
// never printed, the work dir removed, signals forwarded).
package runnerimages
