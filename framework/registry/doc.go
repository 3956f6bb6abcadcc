// Package registry defines the contract between a Warren service and a
// service-discovery backend: the Instance record a process publishes, the
// Registrar that keeps it published, and the Discovery side that turns a
// service name into a go-kit sd.Instancer.
//
// Backends live in sub-packages (etcd, consul, memory). Instance strings
// handed to go-kit are URLs ("http://10.0.0.7:8080/?id=...&zone=a"), so an
// sd.Factory that only wants the address can use url.Parse(s).Host while
// balancers that need zone, weight or metadata call ParseInstance.
package registry
