package org.ruang.app

import android.app.Notification
import android.app.Service
import android.content.pm.ServiceInfo
import android.media.AudioDeviceInfo
import android.media.AudioManager
import android.os.Build

/**
 * Every call above the app's minSdk (26) lives here, each behind a Build.VERSION.SDK_INT
 * check. scripts/android-check compiles this file against API 35 and everything else against
 * API 26, so an unguarded newer API anywhere else fails the build.
 */
object Compat {

    /**
     * startForeground with the service types: mediaPlayback always, microphone only while on
     * stage (API 30+; Android 14 requires the microphone type to be started while the app is
     * visible and RECORD_AUDIO granted, which the caller ensures).
     */
    fun startForeground(service: Service, id: Int, notification: Notification, microphone: Boolean) {
        if (Build.VERSION.SDK_INT >= 30) {
            var types = ServiceInfo.FOREGROUND_SERVICE_TYPE_MEDIA_PLAYBACK
            if (microphone) types = types or ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE
            service.startForeground(id, notification, types)
        } else if (Build.VERSION.SDK_INT >= 29) {
            service.startForeground(id, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_MEDIA_PLAYBACK)
        } else {
            service.startForeground(id, notification)
        }
    }

    /** Shows the service notification at once instead of after Android 12's 10 s delay. */
    fun showImmediately(builder: Notification.Builder): Notification.Builder {
        if (Build.VERSION.SDK_INT >= 31) {
            builder.setForegroundServiceBehavior(Notification.FOREGROUND_SERVICE_IMMEDIATE)
        }
        return builder
    }

    /** POST_NOTIFICATIONS is a runtime permission from API 33. */
    fun notificationsNeedPermission(): Boolean = Build.VERSION.SDK_INT >= 33

    /**
     * Routes voice communication (on stage) to a headset if one is connected: Bluetooth, then
     * wired/USB, else the loudspeaker. API 31+ uses setCommunicationDevice; older versions use
     * Bluetooth SCO or the speakerphone switch.
     */
    @Suppress("DEPRECATION")
    fun routeForStage(audio: AudioManager) {
        if (Build.VERSION.SDK_INT >= 31) {
            val devices = audio.availableCommunicationDevices
            val order = listOf(
                AudioDeviceInfo.TYPE_BLUETOOTH_SCO,
                AudioDeviceInfo.TYPE_BLE_HEADSET,
                AudioDeviceInfo.TYPE_WIRED_HEADSET,
                AudioDeviceInfo.TYPE_USB_HEADSET,
                AudioDeviceInfo.TYPE_BUILTIN_SPEAKER,
            )
            val pick = order.firstNotNullOfOrNull { t -> devices.firstOrNull { it.type == t } }
            if (pick != null) audio.setCommunicationDevice(pick)
        } else {
            val outputs = audio.getDevices(AudioManager.GET_DEVICES_OUTPUTS)
            val sco = outputs.any { it.type == AudioDeviceInfo.TYPE_BLUETOOTH_SCO }
            val wired = outputs.any {
                it.type == AudioDeviceInfo.TYPE_WIRED_HEADSET || it.type == AudioDeviceInfo.TYPE_WIRED_HEADPHONES ||
                    it.type == AudioDeviceInfo.TYPE_USB_HEADSET
            }
            when {
                sco -> {
                    audio.startBluetoothSco()
                    audio.isBluetoothScoOn = true
                }
                wired -> audio.isSpeakerphoneOn = false
                else -> audio.isSpeakerphoneOn = true
            }
        }
    }

    /** Undoes [routeForStage] when leaving the stage. */
    @Suppress("DEPRECATION")
    fun clearStageRoute(audio: AudioManager) {
        if (Build.VERSION.SDK_INT >= 31) {
            audio.clearCommunicationDevice()
        } else {
            if (audio.isBluetoothScoOn) {
                audio.isBluetoothScoOn = false
                audio.stopBluetoothSco()
            }
            audio.isSpeakerphoneOn = false
        }
    }
}
