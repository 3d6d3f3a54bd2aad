// Command vcsim starts govmomi's vCenter simulator with an inventory large enough to
// exercise cmdb's vSphere provider: several datacenters, hundreds of virtual machines,
// some templates, some powered off, and guest IP addresses on some machines.
//
// It builds offline from Debian's packages (golang-go, golang-github-vmware-govmomi-dev):
//
//	GO111MODULE=off GOPATH=<dir>:/usr/share/gocode go build -o vcsim ./tools/vcsim
//
// and prints the SDK URL (without credentials; any non-empty user and password log in)
// on its first line of output, then serves until killed.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8989", "address to listen on (host:port; port 0 picks a free one)")
	useTLS := flag.Bool("tls", false, "serve https with a self-signed certificate")
	datacenters := flag.Int("dc", 3, "datacenters")
	clusters := flag.Int("cluster", 2, "clusters per datacenter")
	clusterHosts := flag.Int("host", 2, "hosts per cluster")
	standalone := flag.Int("standalone-host", 1, "standalone hosts per datacenter")
	machines := flag.Int("vm", 40, "virtual machines per resource pool")
	templateEvery := flag.Int("template-every", 10, "every n-th virtual machine becomes a template (0: none)")
	offEvery := flag.Int("off-every", 7, "every n-th virtual machine that is not a template is powered off (0: none)")
	flag.Parse()

	model := simulator.VPX()
	model.Datacenter = *datacenters
	model.Cluster = *clusters
	model.ClusterHost = *clusterHosts
	model.Host = *standalone
	model.Machine = *machines
	if err := model.Create(); err != nil {
		log.Fatalf("vcsim: creating the model: %v", err)
	}
	defer model.Remove()

	shape(*templateEvery, *offEvery)

	model.Service.Listen = &url.URL{Host: *listen}
	if *useTLS {
		model.Service.TLS = new(tls.Config)
	}
	server := model.Service.NewServer()
	defer server.Close()

	u := *server.URL
	u.User = nil
	fmt.Println(u.String())
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}

// shape turns some machines into templates, powers some off and gives some guest
// addresses (IPv4, IPv6 and a link-local one that clients should drop).
func shape(templateEvery, offEvery int) {
	for i, entity := range simulator.Map.All("VirtualMachine") {
		vm, ok := entity.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		n := i + 1
		switch {
		case templateEvery > 0 && n%templateEvery == 0:
			powerOff(vm)
			vm.Config.Template = true
			vm.Summary.Config.Template = true
		case offEvery > 0 && n%offEvery == 0:
			powerOff(vm)
		case n%3 == 0:
			v4 := fmt.Sprintf("10.%d.%d.%d", n/65536%256, n/256%256, n%256)
			v6 := fmt.Sprintf("2001:db8::%x", n)
			vm.Guest.IpAddress = v4
			vm.Guest.HostName = fmt.Sprintf("guest-%d.example.internal", n)
			vm.Guest.Net = []types.GuestNicInfo{{
				Network:    "VM Network",
				Connected:  true,
				MacAddress: fmt.Sprintf("00:50:56:00:%02x:%02x", n/256%256, n%256),
				IpAddress:  []string{v4, v6, "fe80::250:56ff:fe00:1"},
			}}
		}
	}
}

func powerOff(vm *simulator.VirtualMachine) {
	vm.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
	vm.Summary.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
}
