package org.ruang.app.presenter

/**
 * Decides when the core must be told that the network changed (`Room.networkChanged()`),
 * from `ConnectivityManager`'s default-network callbacks: a different default network
 * (Wi-Fi to mobile data and back), or the same network with a different set of addresses
 * (a new DHCP lease, IPv6 privacy address rotation that removed ours). The first network seen
 * is where the room was joined: nothing to do. Losing the network alone does nothing either —
 * the switch happens when the next one is available. Plain Kotlin, unit-tested on the JVM.
 */
class NetworkSwitchPolicy {
    private var network: String? = null
    private var addresses: Set<String> = emptySet()

    /** A default network is available (`onAvailable`). True: call `networkChanged()`. */
    fun onAvailable(networkId: String): Boolean {
        val before = network
        network = networkId
        if (before != networkId) addresses = emptySet()
        return before != null && before != networkId
    }

    /** Its link properties changed (`onLinkPropertiesChanged`). True: call `networkChanged()`. */
    fun onAddresses(networkId: String, now: Set<String>): Boolean {
        if (networkId != network) return onAvailable(networkId).also { addresses = now }
        val before = addresses
        addresses = now
        // An address we may be using went away; new ones alone do not break anything.
        return before.isNotEmpty() && !now.containsAll(before)
    }
}
